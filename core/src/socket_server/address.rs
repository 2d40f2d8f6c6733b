//! Addresses: the encoded UDP peer address, `ip:port` names, error texts and name
//! resolution.

use super::protocol;
use socket2::{Domain, Socket as RawSocket, Type};
use std::io::{self};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

/// Encodes a UDP peer as skynet does: protocol byte (1 IPv4, 2 IPv6), port (network order),
/// address bytes: 7 or 19 bytes.
pub fn encode_udp_address(addr: &SocketAddr) -> Vec<u8> {
    let mut out = Vec::with_capacity(19);
    match addr.ip() {
        IpAddr::V4(ip) => {
            out.push(protocol::UDP);
            out.extend_from_slice(&addr.port().to_be_bytes());
            out.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out.push(protocol::UDPV6);
            out.extend_from_slice(&addr.port().to_be_bytes());
            out.extend_from_slice(&ip.octets());
        }
    }
    out
}

/// The size of an encoded UDP address with this protocol byte (7 or 19), if valid.
pub fn udp_address_size(protocol_byte: u8) -> Option<usize> {
    match protocol_byte {
        protocol::UDP => Some(7),
        protocol::UDPV6 => Some(19),
        _ => None,
    }
}

/// Decodes an encoded UDP address (extra bytes after it are ignored).
pub fn decode_udp_address(bytes: &[u8]) -> Option<SocketAddr> {
    let size = udp_address_size(*bytes.first()?)?;
    let b = bytes.get(..size)?;
    let port = u16::from_be_bytes([b[1], b[2]]);
    let ip = if size == 7 {
        IpAddr::V4(Ipv4Addr::new(b[3], b[4], b[5], b[6]))
    } else {
        let mut o = [0u8; 16];
        o.copy_from_slice(&b[3..19]);
        IpAddr::V6(Ipv6Addr::from(o))
    };
    Some(SocketAddr::new(ip, port))
}

pub(super) fn protocol_of(addr: &SocketAddr) -> u8 {
    if addr.is_ipv4() {
        protocol::UDP
    } else {
        protocol::UDPV6
    }
}

/// `ip:port` as skynet prints it (no brackets around IPv6).
pub(super) fn addr_name(addr: &SocketAddr) -> String {
    format!("{}:{}", addr.ip(), addr.port())
}

/// `strerror` text of an OS error (std's message without the ` (os error N)` suffix).
pub fn strerror(e: &io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) if e.raw_os_error().is_some() => s[..i].to_owned(),
        _ => s,
    }
}

/// The resolver's message for a failed lookup (std prefixes getaddrinfo's text).
pub(super) fn gai_text(e: &io::Error) -> String {
    let s = strerror(e);
    match s.strip_prefix("failed to lookup address information: ") {
        Some(rest) => rest.to_owned(),
        None => s,
    }
}

/// getaddrinfo-style resolution (`AF_UNSPEC`); `None`/"" means `0.0.0.0` (for binding).
pub(super) fn resolve(host: Option<&str>, port: i32) -> io::Result<Vec<SocketAddr>> {
    let host = match host {
        None | Some("") => "0.0.0.0",
        Some(h) => h,
    };
    let port = u16::try_from(port)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "Invalid port"))?;
    let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "No address associated with hostname",
        ));
    }
    Ok(addrs)
}

/// Creates a socket bound to `host:port` (first resolved address, SO_REUSEADDR) and its
/// protocol byte.
pub(super) fn bind_socket(host: Option<&str>, port: i32, ty: Type) -> io::Result<(RawSocket, u8)> {
    let addr = resolve(host, port)?
        .into_iter()
        .next()
        .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
    let s = RawSocket::new(Domain::for_address(addr), ty, None)?;
    s.set_reuse_address(true)?;
    s.bind(&addr.into())?;
    s.set_nonblocking(true)?;
    let proto = if ty == Type::STREAM {
        protocol::TCP
    } else {
        protocol_of(&addr)
    };
    Ok((s, proto))
}
