//! Lua-level tests of `ltls.c` / `ltls.init.c`: a client and a server connection of the same
//! state handshake over strings (the way `http.tlshelper` moves them over a socket), with
//! certificates made by rcgen for each test.

use super::*;
use crate::testlua;
use parking_lot::Mutex;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use std::path::PathBuf;

/// The init flag is process-wide: the tests that use the module run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// PEM files for one test: a CA, a server certificate for "localhost" signed by it (with its
/// key), and an unrelated self-signed CA.
struct Certs {
    dir: PathBuf,
}

impl Certs {
    fn new(tag: &str) -> Certs {
        let dir = std::env::temp_dir().join(format!("ltls-test-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // Distinct subjects: OpenSSL takes a certificate whose issuer is its subject for a
        // self-signed one.
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "skynet-rs test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &ca)
            .unwrap();
        let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.join("cert.pem"), leaf.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), leaf_key.serialize_pem()).unwrap();
        std::fs::write(dir.join("other.pem"), other.cert.pem()).unwrap();
        std::fs::write(dir.join("otherkey.pem"), other.signing_key.serialize_pem()).unwrap();
        Certs { dir }
    }

    /// Lua globals DIR naming the directory (with a trailing slash).
    fn prelude(&self) -> String {
        format!(
            "local DIR = {:?}\n{PAIR}",
            format!("{}/", self.dir.display())
        )
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const MODULES: &[(&CStr, CFunction)] = &[(c"init", luaopen_ltls_init_c)];
const EXTRA: &[(&CStr, CFunction)] = &[(c"ltls_open", luaopen_ltls_c)];

/// `pair(cctx, sctx, host)` → client, server connections after a full handshake driven as
/// tlshelper drives it (client: handshake() then handshake(reply) until finished; server:
/// handshake(data) until finished, then write() to flush); `xfer(from_out)` style helpers.
const PAIR: &str = r#"
package.preload["ltls.c"] = ltls_open
init.constructor()
local c = require "ltls.c"
local function handshake(cctx, sctx, host)
    local cli = c.newtls("client", cctx, host)
    local srv = c.newtls("server", sctx)
    local to_srv = assert(cli:handshake(), "ClientHello")
    local rounds = 0
    while not (cli:finished() and srv:finished()) do
        rounds = rounds + 1
        assert(rounds < 10, "handshake does not converge")
        if not srv:finished() then
            local back = srv:handshake(to_srv)
            to_srv = ""
            if srv:finished() then back = (back or "") .. srv:write() end
            if back and #back > 0 and not cli:finished() then
                to_srv = cli:handshake(back) or ""
            elseif back and #back > 0 then
                assert(cli:read(back) == "")
            end
        else
            assert(srv:read(to_srv) == "")
            to_srv = ""
        end
    end
    return cli, srv
end
"#;

#[test]
fn require_needs_init() {
    let _g = SERIAL.lock();
    testlua::check(
        MODULES,
        EXTRA,
        r#"
        package.preload["ltls.c"] = ltls_open
        init.destructor()
        local ok, err = pcall(require, "ltls.c")
        assert(not ok and err:find("ltls need init, Put enablessl = true in you config file.", 1, true), err)
        init.constructor()
        package.loaded["ltls.c"] = nil
        local c = require "ltls.c"
        assert(type(c.newctx) == "function" and type(c.newtls) == "function")
        "#,
    );
}

#[test]
fn handshake_and_data_both_ways() {
    let _g = SERIAL.lock();
    let certs = Certs::new("data");
    let code = certs.prelude()
        + r#"
        local sctx = c.newctx()
        sctx:set_cert(DIR .. "cert.pem", DIR .. "key.pem")
        local cctx = c.newctx()   -- no set_ca: any server certificate is accepted
        local cli, srv = handshake(cctx, sctx, "localhost")
        assert(cli:finished() and srv:finished())
        local req = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
        assert(srv:read(cli:write(req)) == req)
        local big = string.rep("0123456789abcdef", 8192) -- 128 KiB: several records
        local wire = srv:write(big)
        assert(#wire > #big)
        -- delivered in odd-sized pieces, as a socket would
        local got, i = {}, 1
        while i <= #wire do
            got[#got + 1] = cli:read(wire:sub(i, i + 999))
            i = i + 1000
        end
        assert(table.concat(got) == big, "bulk data differs")
        assert(cli:read() == "" and cli:read("") == "")
        assert(cli:write() == "")
        local ok, err = pcall(cli.handshake, cli, "")
        assert(not ok and err:find("handshake is finished", 1, true), err)
        cli:close()
        cli:close()
        ok, err = pcall(cli.write, cli, "x")
        assert(not ok and err:find("context is closed", 1, true), err)
        srv:close()
        "#;
    testlua::check(MODULES, EXTRA, &code);
}

#[test]
fn verification_with_set_ca() {
    let _g = SERIAL.lock();
    let certs = Certs::new("verify");
    let code = certs.prelude()
        + r#"
        local sctx = c.newctx()
        sctx:set_cert(DIR .. "cert.pem", DIR .. "key.pem")
        -- the right CA and name
        local good = c.newctx()
        good:set_ca(DIR .. "ca.pem")
        local cli = handshake(good, sctx, "localhost")
        assert(cli:finished())
        -- SNI set after newtls (tlshelper's order) also counts
        local late = c.newtls("client", good)
        assert(late:set_ext_host_name("localhost") == 1)
        assert(#late:handshake() > 0)
        -- a CA that did not sign the server's certificate
        local wrong = c.newctx()
        wrong:set_ca(DIR .. "other.pem")
        local ok, err = pcall(handshake, wrong, sctx, "localhost")
        assert(not ok and err:find("handshake error", 1, true) and err:find("certificate", 1, true), err)
        -- the right CA, the wrong name
        ok, err = pcall(handshake, good, sctx, "example.com")
        assert(not ok and err:find("handshake error", 1, true), err)
        -- verification needs a name
        ok, err = pcall(handshake, good, sctx, nil)
        assert(not ok and err:find("host name", 1, true), err)
        -- without set_ca, a self-signed server for another name is accepted
        local self = c.newctx()
        self:set_cert(DIR .. "other.pem", DIR .. "otherkey.pem")
        assert(handshake(c.newctx(), self, "example.com"):finished())
        assert(handshake(c.newctx(), self, nil):finished())
        "#;
    testlua::check(MODULES, EXTRA, &code);
}

#[test]
fn argument_and_setting_errors() {
    let _g = SERIAL.lock();
    let certs = Certs::new("errors");
    let code = certs.prelude()
        + r#"
        local function raises(needle, f, ...)
            local ok, err = pcall(f, ...)
            assert(not ok and tostring(err):find(needle, 1, true), tostring(err))
        end
        local ctx = c.newctx()
        raises("invalid method:nil e.g[server, client]", c.newtls, nil, ctx)
        raises("invalid method:peer e.g[server, client]", c.newtls, "peer", ctx)
        raises("need sslctx", c.newtls, "client", {})
        raises("need tls context", c.newtls("client", ctx).read, {})
        raises("need certfile", ctx.set_cert, ctx)
        raises("need private key", ctx.set_cert, ctx, DIR .. "cert.pem")
        raises("cannot load", ctx.set_cert, ctx, DIR .. "missing.pem", DIR .. "key.pem")
        raises("does not fit", ctx.set_cert, ctx, DIR .. "cert.pem", DIR .. "otherkey.pem")
        raises("need cipher list", ctx.set_ciphers, ctx)
        raises("no supported cipher", ctx.set_ciphers, ctx, "RC4-MD5:NULL")
        raises("no usable certificate", ctx.set_ca, ctx, DIR .. "key.pem")
        -- a server without a certificate fails at its first handshake
        local srv = c.newtls("server", ctx)
        raises("set_cert", srv.handshake, srv, "")
        -- garbage from the peer
        local cli = c.newtls("client", c.newctx(), "localhost")
        cli:handshake()
        raises("handshake error", cli.handshake, cli, "HTTP/1.1 400 Bad Request\r\n\r\n")
        -- a cipher restriction both sides share (OpenSSL and IANA names)
        local sctx = c.newctx()
        sctx:set_cert(DIR .. "cert.pem", DIR .. "key.pem")
        sctx:set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256:TLS_AES_256_GCM_SHA384")
        local cctx = c.newctx()
        cctx:set_ciphers("TLS_AES_256_GCM_SHA384")
        local a, b = handshake(cctx, sctx, "localhost")
        assert(b:read(a:write("ok")) == "ok")
        -- no suite in common
        local c12 = c.newctx()
        c12:set_ciphers("ECDHE-RSA-AES256-GCM-SHA384")
        raises("handshake error", handshake, c12, sctx, "localhost")
        "#;
    testlua::check(MODULES, EXTRA, &code);
}
