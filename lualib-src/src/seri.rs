//! lua-seri: skynet.pack / skynet.unpack wire format (SURFACE 11.1). (Being written.)
use crate::lua::ffi::{self, lua_State};
use std::ffi::c_int;
pub unsafe extern "C-unwind" fn pack(l: *mut lua_State) -> c_int {
    unsafe { ffi::luaL_error(l, c"todo".as_ptr()) }
}
pub unsafe extern "C-unwind" fn unpack(l: *mut lua_State) -> c_int {
    unsafe { ffi::luaL_error(l, c"todo".as_ptr()) }
}
pub unsafe extern "C-unwind" fn packstring(l: *mut lua_State) -> c_int {
    unsafe { ffi::luaL_error(l, c"todo".as_ptr()) }
}
