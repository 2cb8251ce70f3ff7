//! Networking at boot. The kernel configures the real interface itself (`ip=dhcp` on
//! the measured command line, `CONFIG_IP_PNP_DHCP`) before it starts `/init`; PID 1
//! only has to bring up `lo` (which gives it 127.0.0.1) and check that some other
//! interface has an IPv4 address.

use std::io;
use std::net::{Ipv4Addr, UdpSocket};
use std::os::fd::AsRawFd;

/// Interfaces with an IPv4 address, as `(name, address)`.
pub type Addresses = Vec<(String, Ipv4Addr)>;

fn ifname(name: &str) -> io::Result<[libc::c_char; libc::IFNAMSIZ]> {
    let mut out = [0 as libc::c_char; libc::IFNAMSIZ];
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.bytes().any(|b| b == 0) {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    for (o, b) in out.iter_mut().zip(name.bytes()) {
        *o = b as libc::c_char;
    }
    Ok(out)
}

fn name_of(raw: &[libc::c_char; libc::IFNAMSIZ]) -> String {
    let bytes: Vec<u8> = raw
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A datagram socket to issue interface ioctls on (any socket works for them).
fn ioctl_socket() -> io::Result<UdpSocket> {
    UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
}

/// The per-interface requests that read or write a single `ifreq`.
#[derive(Clone, Copy)]
enum IfreqRequest {
    GetFlags,
    SetFlags,
}

/// `ioctl(sock, SIOC[GS]IFFLAGS, req)`.
#[allow(unsafe_code)]
fn ifreq_ioctl(sock: &UdpSocket, request: IfreqRequest, req: &mut libc::ifreq) -> io::Result<()> {
    let request = match request {
        IfreqRequest::GetFlags => libc::SIOCGIFFLAGS,
        IfreqRequest::SetFlags => libc::SIOCSIFFLAGS,
    };
    // SAFETY: `req` is a fully initialised `ifreq` we borrow exclusively for the call;
    // both requests read `ifr_name` and read or write only the `ifru_flags` member of
    // the union, within the struct's size.
    let ret = unsafe {
        libc::ioctl(
            sock.as_raw_fd(),
            request as libc::Ioctl,
            req as *mut libc::ifreq,
        )
    };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Set `IFF_UP` on interface `name` (SIOCGIFFLAGS, then SIOCSIFFLAGS).
#[allow(unsafe_code)]
pub(crate) fn bring_up(name: &str) -> io::Result<()> {
    let sock = ioctl_socket()?;
    let mut req = libc::ifreq {
        ifr_name: ifname(name)?,
        ifr_ifru: libc::__c_anonymous_ifr_ifru { ifru_flags: 0 },
    };
    ifreq_ioctl(&sock, IfreqRequest::GetFlags, &mut req)?;
    // SAFETY: `ifru_flags` is the member we initialised and SIOCGIFFLAGS wrote.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    req.ifr_ifru.ifru_flags = flags | (libc::IFF_UP as libc::c_short);
    ifreq_ioctl(&sock, IfreqRequest::SetFlags, &mut req)
}

/// Every interface that has an IPv4 address (SIOCGIFCONF lists exactly those).
#[allow(unsafe_code)]
pub(crate) fn ipv4_addresses() -> io::Result<Addresses> {
    const MAX: usize = 32;
    let sock = ioctl_socket()?;
    let blank = libc::ifreq {
        ifr_name: [0; libc::IFNAMSIZ],
        ifr_ifru: libc::__c_anonymous_ifr_ifru {
            ifru_addr: libc::sockaddr {
                sa_family: 0,
                sa_data: [0; 14],
            },
        },
    };
    let mut reqs = vec![blank; MAX];
    let mut conf = libc::ifconf {
        ifc_len: libc::c_int::try_from(MAX * std::mem::size_of::<libc::ifreq>())
            .unwrap_or(libc::c_int::MAX),
        ifc_ifcu: libc::__c_anonymous_ifc_ifcu {
            ifcu_req: reqs.as_mut_ptr(),
        },
    };
    // SAFETY: `conf.ifc_ifcu.ifcu_req` points to `reqs`, a live, exclusively borrowed
    // buffer of `MAX` initialised `ifreq`s, and `ifc_len` is its size in bytes; the
    // kernel writes at most `ifc_len` bytes there and sets `ifc_len` to what it wrote.
    let ret = unsafe {
        libc::ioctl(
            sock.as_raw_fd(),
            libc::SIOCGIFCONF as libc::Ioctl,
            &mut conf as *mut libc::ifconf,
        )
    };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    let n = usize::try_from(conf.ifc_len).unwrap_or(0) / std::mem::size_of::<libc::ifreq>();
    let mut out = Vec::new();
    for req in reqs.iter().take(n.min(MAX)) {
        // SAFETY: SIOCGIFCONF fills `ifru_addr` of each returned entry (the member we
        // initialised, so it is valid even if the kernel had written nothing).
        let sa = unsafe { req.ifr_ifru.ifru_addr };
        if i32::from(sa.sa_family) != libc::AF_INET {
            continue;
        }
        // struct sockaddr_in: family, port (2 bytes), address (4 bytes) = sa_data[2..6].
        let b: Vec<u8> = sa
            .sa_data
            .iter()
            .skip(2)
            .take(4)
            .map(|c| *c as u8)
            .collect();
        if let [a, b, c, d] = b[..] {
            out.push((name_of(&req.ifr_name), Ipv4Addr::new(a, b, c, d)));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_loopback_address() {
        // Any Linux test machine has lo up with 127.0.0.1.
        let addrs = ipv4_addresses().unwrap();
        assert!(addrs.iter().any(|(_, a)| a.is_loopback()), "{addrs:?}");
    }

    #[test]
    fn bad_interface_names_are_refused() {
        assert!(ifname("lo").is_ok());
        assert!(ifname("").is_err());
        assert!(ifname("a-very-long-interface-name").is_err());
        assert!(ifname("e\0th").is_err());
        // Not PID 1 and (usually) not allowed: the call fails with an errno, never panics.
        assert!(bring_up("no-such-if0").is_err());
    }
}
