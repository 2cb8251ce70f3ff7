//! The system calls PID 1 needs, each wrapped once in a safe function: together with
//! [`super::net`] the only `unsafe` in the crate. Every block says why it is sound;
//! errors come back as `std::io::Error` (errno).

use std::ffi::CString;
use std::io;

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn cstr(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// `mount(source, target, fstype, flags, NULL)`.
#[allow(unsafe_code)]
pub(crate) fn mount(
    source: &str,
    target: &str,
    fstype: &str,
    flags: libc::c_ulong,
) -> io::Result<()> {
    let (source, target, fstype) = (cstr(source)?, cstr(target)?, cstr(fstype)?);
    // SAFETY: the three pointers come from live, NUL-terminated `CString`s that
    // outlive the call; `data` is NULL, which mount(2) accepts for these filesystems.
    let ret = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            flags,
            std::ptr::null(),
        )
    };
    check(ret)
}

/// `getrandom(buf, GRND_NONBLOCK?)`: fills `buf` completely or fails.
/// With `block == false`, fails with `WouldBlock` while the kernel's CRNG is not ready.
#[allow(unsafe_code)]
pub(crate) fn getrandom(buf: &mut [u8], block: bool) -> io::Result<()> {
    let flags = if block { 0 } else { libc::GRND_NONBLOCK };
    let mut filled = 0;
    while let Some(rest) = buf.get_mut(filled..).filter(|r| !r.is_empty()) {
        // SAFETY: `rest` is a valid, writable, exclusively borrowed buffer of
        // `rest.len()` bytes; the kernel writes at most that many.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), flags) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        filled += usize::try_from(n).unwrap_or(0);
    }
    Ok(())
}

/// `mlockall(MCL_CURRENT | MCL_FUTURE)`: no page of this process is ever swapped
/// out (there is no swap in the image either; this keeps it so if one appeared).
#[allow(unsafe_code)]
pub(crate) fn mlockall() -> io::Result<()> {
    // SAFETY: mlockall takes only flags and touches no memory of ours.
    check(unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) })
}

/// `prctl(PR_SET_DUMPABLE, 0)`: no core dumps, no ptrace attach by same-uid processes,
/// `/proc/1/mem` and friends owned by root only.
#[allow(unsafe_code)]
pub(crate) fn set_not_dumpable() -> io::Result<()> {
    let zero: libc::c_ulong = 0;
    // SAFETY: PR_SET_DUMPABLE reads one integer argument; the variadic arguments are
    // passed as `c_ulong` as the kernel expects.
    check(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, zero, zero, zero, zero) })
}

/// `setrlimit(RLIMIT_CORE, {0, 0})`.
#[allow(unsafe_code)]
pub(crate) fn no_core_dumps() -> io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `&lim` points to an initialised `rlimit` that lives across the call;
    // setrlimit only reads it.
    check(unsafe { libc::setrlimit(libc::RLIMIT_CORE, &lim) })
}

/// `reboot(RB_POWER_OFF)`. Returns only if the kernel refused (not PID 1 / no
/// CAP_SYS_BOOT).
#[allow(unsafe_code)]
pub(crate) fn power_off() -> io::Error {
    // SAFETY: reboot takes a constant and touches no memory of ours. We never write
    // files, so there is nothing to sync first (and no disk to sync to).
    let ret = unsafe { libc::reboot(libc::RB_POWER_OFF) };
    if ret == -1 {
        io::Error::last_os_error()
    } else {
        io::Error::other("reboot(RB_POWER_OFF) returned")
    }
}
