//! lua-seri: skynet.pack / skynet.unpack wire format (SURFACE 11.1).
