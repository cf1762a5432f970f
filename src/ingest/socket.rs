//! Two UDP socket options std and socket2 leave out, both Linux-only: a receive buffer past
//! `net.core.rmem_max`, and the kernel's count of datagrams it dropped for the socket. A
//! collector at 50,000 datagrams a second needs the first to ride out a busy moment, and an
//! operator needs the second to see the loss no userspace counter can.

use std::io;
use std::os::fd::{AsFd, AsRawFd};

/// Sets the receive buffer with `SO_RCVBUFFORCE`, which ignores `net.core.rmem_max`; allowed
/// with `CAP_NET_ADMIN` (root, or the systemd unit's capability), refused (`EPERM`) without.
#[allow(unsafe_code)]
pub fn force_receive_buffer(socket: &impl AsFd, bytes: usize) -> io::Result<()> {
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: the fd is open for the borrow's length; the kernel reads one c_int from `value`,
    // which lives through the call, of the length given.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_fd().as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            std::ptr::from_ref(&value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    match rc {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Datagrams the kernel dropped for this socket since it was opened (`SO_MEMINFO`'s
/// `SK_MEMINFO_DROPS`: the receive buffer was full, or memory ran short). One system call.
#[allow(unsafe_code)]
pub fn kernel_drops(socket: &impl AsFd) -> io::Result<u64> {
    const VARS: usize = libc::SK_MEMINFO_DROPS as usize + 1;
    let mut info = [0u32; VARS];
    let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
    // SAFETY: the fd is open for the borrow's length; the kernel writes at most `len` bytes
    // into `info`, which is that long and lives through the call, and sets `len` to what it
    // wrote.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_fd().as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_MEMINFO,
            info.as_mut_ptr().cast(),
            &raw mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if (len as usize) < std::mem::size_of_val(&info) {
        return Err(io::Error::other(
            "SO_MEMINFO without a drop count (kernel too old)",
        ));
    }
    Ok(u64::from(info[VARS - 1]))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// A socket nobody reads from, sent more than its smallest buffer holds: the kernel's drop
    /// count is exactly what did not fit.
    #[test]
    fn kernel_drops_counts_what_a_full_buffer_lost() {
        let receiver = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket2::SockRef::from(&receiver)
            .set_recv_buffer_size(0)
            .unwrap(); // the kernel's minimum, a few KB
        assert_eq!(kernel_drops(&receiver).unwrap(), 0);
        let datagram = [0u8; 1_000];
        const SENT: u64 = 200;
        for _ in 0..SENT {
            sender
                .send_to(&datagram, receiver.local_addr().unwrap())
                .unwrap();
        }
        receiver.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 2_000];
        let mut received = 0;
        while receiver.recv(&mut buf).is_ok() {
            received += 1;
        }
        let dropped = kernel_drops(&receiver).unwrap();
        assert!(dropped > 0, "the buffer held all {SENT}");
        assert_eq!(received + dropped, SENT);
    }

    #[test]
    fn a_forced_buffer_goes_past_rmem_max_when_allowed() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let rmem_max: usize = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        match force_receive_buffer(&socket, rmem_max * 2) {
            // Linux doubles what it grants, for its bookkeeping.
            Ok(()) => {
                assert!(socket2::SockRef::from(&socket).recv_buffer_size().unwrap() >= rmem_max * 4)
            }
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}"),
        }
    }
}
