//! `#[lua_function]`: the panic guard for every Lua C function of `skynet-lualib`.
//!
//! Lua calls C functions through C frames (`luaD_precall`, `lua_pcall`, ...). A Rust panic that
//! unwinds through them skips Lua's own bookkeeping and leaves the VM inconsistent, so each
//! function is rewritten to run its body under `crate::lua::guard`, which turns a panic into a
//! Lua error raised after the panic payload is dropped:
//!
//! ```ignore
//! #[lua_function]
//! unsafe extern "C-unwind" fn lfoo(l: *mut lua_State) -> c_int { body }
//! // becomes
//! unsafe extern "C-unwind" fn lfoo(l: *mut lua_State) -> c_int {
//!     unsafe extern "C-unwind" fn __lua_function_body(l: *mut lua_State) -> c_int { body }
//!     unsafe { crate::lua::guard(l, "lfoo", __lua_function_body) }
//! }
//! ```
//!
//! Written over `proc_macro` alone (no `syn`): the item is split into its attributes, its
//! signature and its body block, which is all the rewrite needs.

use proc_macro::{Delimiter, Group, Ident, Literal, Punct, Spacing, Span, TokenStream, TokenTree};

/// Wraps a `unsafe extern "C-unwind" fn name(l: *mut lua_State) -> c_int { .. }` in the
/// crate's panic guard (`crate::lua::guard`).
#[proc_macro_attribute]
pub fn lua_function(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        return error("#[lua_function] takes no arguments");
    }
    let tokens: Vec<TokenTree> = item.into_iter().collect();
    // Outer attributes: `#` followed by a bracketed group.
    let mut i = 0;
    while i + 1 < tokens.len()
        && is_punct(&tokens[i], '#')
        && is_group(&tokens[i + 1], Delimiter::Bracket)
    {
        i += 2;
    }
    let (attrs, rest) = tokens.split_at(i);
    let Some((TokenTree::Group(body), sig)) = rest.split_last() else {
        return error("#[lua_function] expects a function with a body");
    };
    if body.delimiter() != Delimiter::Brace {
        return error("#[lua_function] expects a function with a body");
    }
    let Some(fn_pos) = sig
        .iter()
        .position(|t| matches!(t, TokenTree::Ident(id) if id.to_string() == "fn"))
    else {
        return error("#[lua_function] expects a function");
    };
    let Some(TokenTree::Ident(name)) = sig.get(fn_pos + 1) else {
        return error("#[lua_function] expects a named function");
    };
    let Some(TokenTree::Group(params)) = sig.get(fn_pos + 2) else {
        return error("#[lua_function] expects a parameter list");
    };
    let Some(TokenTree::Ident(state)) = params.stream().into_iter().next() else {
        return error("#[lua_function] expects the lua_State as first parameter");
    };
    // The qualifiers start at `unsafe` / `extern` / `fn`; a visibility before them stays outside.
    let qual_pos = sig
        .iter()
        .position(|t| matches!(t, TokenTree::Ident(id) if ["unsafe", "extern", "fn"].contains(&id.to_string().as_str())))
        .unwrap_or(fn_pos);

    let inner_name = Ident::new("__lua_function_body", Span::mixed_site());
    let mut inner: Vec<TokenTree> = Vec::new();
    inner.extend(attribute("inline"));
    for (k, t) in sig.iter().enumerate().skip(qual_pos) {
        if k == fn_pos + 1 {
            inner.push(TokenTree::Ident(inner_name.clone()));
        } else {
            inner.push(t.clone());
        }
    }
    inner.push(TokenTree::Group(body.clone()));

    // unsafe { crate::lua::guard(l, "name", __lua_function_body) }
    let mut call: Vec<TokenTree> = Vec::new();
    call.push(TokenTree::Ident(Ident::new("crate", Span::call_site())));
    call.extend(path_sep());
    call.push(TokenTree::Ident(Ident::new("lua", Span::call_site())));
    call.extend(path_sep());
    call.push(TokenTree::Ident(Ident::new("guard", Span::call_site())));
    let args: Vec<TokenTree> = vec![
        TokenTree::Ident(state.clone()),
        TokenTree::Punct(Punct::new(',', Spacing::Alone)),
        TokenTree::Literal(Literal::string(&name.to_string())),
        TokenTree::Punct(Punct::new(',', Spacing::Alone)),
        TokenTree::Ident(inner_name),
    ];
    call.push(TokenTree::Group(Group::new(
        Delimiter::Parenthesis,
        args.into_iter().collect(),
    )));
    // SAFETY (of the generated block): the guard calls the body with the state Lua passed us.
    let guarded: Vec<TokenTree> = vec![
        TokenTree::Ident(Ident::new("unsafe", Span::call_site())),
        TokenTree::Group(Group::new(Delimiter::Brace, call.into_iter().collect())),
    ];

    let mut new_body: Vec<TokenTree> = inner;
    new_body.extend(guarded);

    let mut out: Vec<TokenTree> = attrs.to_vec();
    out.extend(sig.iter().cloned());
    out.push(TokenTree::Group(Group::new(
        Delimiter::Brace,
        new_body.into_iter().collect(),
    )));
    out.into_iter().collect()
}

fn is_punct(t: &TokenTree, c: char) -> bool {
    matches!(t, TokenTree::Punct(p) if p.as_char() == c)
}

fn is_group(t: &TokenTree, d: Delimiter) -> bool {
    matches!(t, TokenTree::Group(g) if g.delimiter() == d)
}

fn path_sep() -> [TokenTree; 2] {
    [
        TokenTree::Punct(Punct::new(':', Spacing::Joint)),
        TokenTree::Punct(Punct::new(':', Spacing::Alone)),
    ]
}

/// `#[name]`
fn attribute(name: &str) -> [TokenTree; 2] {
    [
        TokenTree::Punct(Punct::new('#', Spacing::Alone)),
        TokenTree::Group(Group::new(
            Delimiter::Bracket,
            TokenTree::Ident(Ident::new(name, Span::call_site())).into(),
        )),
    ]
}

fn error(msg: &str) -> TokenStream {
    format!("compile_error!({msg:?});").parse().unwrap()
}
