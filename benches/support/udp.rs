//! What the kernel says of UDP sockets.

/// Kernel drops on the daemon's UDP sockets (`/proc/net/udp`'s last column) for `port`.
pub fn drops(port: u16) -> u64 {
    let hex = format!(":{port:04X} ");
    std::fs::read_to_string("/proc/net/udp")
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|a| format!("{a} ").contains(&hex))
        })
        .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok())
        .sum()
}
