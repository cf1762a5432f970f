//! The allowed range of every duration and size key, in one table per section, so a value that
//! would make the daemon misbehave (a poll every 0 s, a queue of one, a timeout past its
//! interval) is a config error with its line and the range, never a surprise at run time.

use std::time::Duration;

use super::load::{Problems, root};
use super::{AgentConfig, Config, KeyPath};

/// An example of how durations are written, for every duration error.
pub(super) const DURATION_EXAMPLE: &str = "a duration such as \"30s\", \"5m\" or \"1h30m\"";

const MS: Duration = Duration::from_millis(1);
const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

/// Every range problem of `config`.
pub(super) fn check(config: &Config, problems: &mut Problems) {
    let mut p = Ranges { problems };
    let (s, at) = (&config.store, |k| root("store").key(k));
    p.duration(at("flush-interval"), s.flush_interval, MS, 10 * SECOND);

    let (h, at) = (&config.http, |k| root("http").key(k));
    p.count(at("max-connections"), h.max_connections, 16, 60_000);
    // Streams hold connections too, so `max-connections` bounds them as well.
    p.count(at("max-stream-clients"), h.max_stream_clients, 1, 60_000);
    p.duration(at("header-timeout"), h.header_timeout, SECOND, 5 * MINUTE);
    p.duration(
        at("request-timeout"),
        h.request_timeout,
        SECOND,
        10 * MINUTE,
    );

    let (c, at) = (&config.console, |k| root("console").key(k));
    p.duration(at("highlight"), c.highlight, Duration::ZERO, HOUR);
    p.duration(at("cleared-linger"), c.cleared_linger, Duration::ZERO, DAY);

    let (i, at) = (&config.impact, |k| root("impact").key(k));
    p.duration(at("recent"), i.recent, Duration::ZERO, 7 * DAY);

    let (c, at) = (&config.complaints, |k| root("complaints").key(k));
    p.duration(
        at("link-look-back"),
        c.link_look_back,
        Duration::ZERO,
        7 * DAY,
    );
    p.duration(at("respond-within"), c.respond_within, MINUTE, 30 * DAY);
    p.duration(at("resolve-within"), c.resolve_within, MINUTE, 90 * DAY);
    p.duration(at("detect-window"), c.detect_window, MINUTE, DAY);
    p.count(at("critical"), c.critical, 1, 100_000);
    p.count(at("max-text-bytes"), c.max_text_bytes, 64, 65_536);

    let (q, at) = (&config.pipeline, |k| root("pipeline").key(k));
    p.count(at("sample-queue"), q.sample_queue, 1_024, 4_194_304);
    p.count(at("verdict-queue"), q.verdict_queue, 64, 1_048_576);

    let (m, at) = (&config.mqtt, |k| root("mqtt").key(k));
    p.duration(at("keepalive"), m.keepalive, 5 * SECOND, HOUR);
    p.count(at("outbox-limit"), m.outbox_limit, 1, 10_000_000);

    let (c, at) = (&config.cluster, |k| root("cluster").key(k));
    p.duration(at("heartbeat"), c.heartbeat, 100 * MS, MINUTE);
    p.duration(at("dead-after"), c.dead_after, SECOND, HOUR);

    let (f, at) = (&config.forecast, |k| root("forecast").key(k));
    // The forecaster's first week only gathers: less history predicts nothing sooner.
    p.duration(at("min-history"), f.min_history, 7 * DAY, 365 * DAY);
    p.count(at("agree"), f.agree as usize, 1, 30);
    p.duration(
        at("major-within"),
        f.major_within,
        Duration::ZERO,
        f.minor_within,
    );
    p.duration(
        at("minor-within"),
        f.minor_within,
        f.major_within,
        f.warning_within,
    );
    p.duration(at("warning-within"), f.warning_within, DAY, 365 * DAY);

    let (pr, at) = (&config.precursors, |k| root("precursors").key(k));
    // The trend test needs four days at least; a trend keeps 30.
    p.duration(at("window"), pr.window, 4 * DAY, 30 * DAY);
    p.count(at("reboots"), pr.reboots as usize, 2, 1_000);
    p.count(at("link-flaps"), pr.link_flaps as usize, 2, 10_000);

    let (a, at) = (&config.alarms, |k| root("alarms").key(k));
    p.duration(
        at("clear-hold-down"),
        a.clear_hold_down,
        Duration::ZERO,
        HOUR,
    );
    p.duration(at("reopen-window"), a.reopen_window, Duration::ZERO, DAY);
    p.duration(at("flap-window"), a.flap_window, MINUTE, DAY);
    p.count(at("flap-threshold"), a.flap_threshold as usize, 2, 1_000);
    p.duration(at("flap-hold"), a.flap_hold, Duration::ZERO, DAY);
    p.duration(
        at("event-clear-after"),
        a.event_clear_after,
        MINUTE,
        30 * DAY,
    );
    p.duration(at("retention"), a.retention, DAY, 3_650 * DAY);
    p.count(at("max-notes-per-fault"), a.max_notes_per_fault, 1, 10_000);
    p.count(at("max-note-bytes"), a.max_note_bytes, 16, 1 << 20);
    for (tier, t) in [
        ("critical", &config.tiers.critical),
        ("major", &config.tiers.major),
        ("minor", &config.tiers.minor),
        ("warning", &config.tiers.warning),
    ] {
        let at = |k| root("tiers").key(tier).key(k);
        for (key, target) in [
            ("ack-within", t.ack_within),
            ("restore-within", t.restore_within),
        ] {
            if let Some(d) = target {
                p.duration(at(key), d, MINUTE, 30 * DAY);
            }
        }
    }

    let (n, at) = (&config.netflow, |k| root("netflow").key(k));
    p.count(
        at("receive-buffer-bytes"),
        n.receive_buffer_bytes,
        65_536,
        1 << 30,
    );
    p.duration(at("interval"), n.interval, SECOND, HOUR);
    p.duration(at("lateness"), n.lateness, Duration::ZERO, HOUR);
    p.count(
        at("max-templates-per-exporter"),
        n.max_templates_per_exporter,
        1,
        65_536,
    );
    p.count(
        at("max-templates"),
        n.max_templates,
        n.max_templates_per_exporter.max(1),
        1_000_000,
    );

    let (sn, at) = (&config.snmp, |k| root("snmp").key(k));
    p.duration(at("interval"), sn.interval, SECOND, DAY);
    // A poll's request must have given up before the next poll is due (judged against a
    // valid interval only, so one bad value is one error).
    let longest = match sn.interval >= SECOND {
        true => (sn.interval / 2).min(MINUTE),
        false => MINUTE,
    };
    p.duration(at("timeout"), sn.timeout, 100 * MS, longest);
    p.count(at("retries"), sn.retries as usize, 0, 10);
    p.count(at("max-in-flight"), sn.max_in_flight, 1, 10_000);
    p.count(
        at("unreachable-after"),
        sn.unreachable_after as usize,
        1,
        100,
    );
    agent(&sn.agent, &root("snmp").key("agent"), p.problems);
    for (i, d) in config.devices.iter().enumerate() {
        agent(&d.agent, &root("device").index(i).key("agent"), p.problems);
        if let Some(every) = d.poll_interval {
            let least = SECOND.max(sn.timeout * 2);
            p.duration(
                root("device").index(i).key("poll-interval"),
                every,
                least,
                DAY,
            );
        }
    }

    let (pr, at) = (&config.probes, |k| root("probes").key(k));
    p.duration(at("interval"), pr.interval, SECOND, DAY);
    p.count(at("count"), pr.count as usize, 1, 100);
    p.duration(at("spacing"), pr.spacing, 10 * MS, 10 * SECOND);
    p.duration(at("timeout"), pr.timeout, 100 * MS, MINUTE);
    if pr.spacing * pr.count.saturating_sub(1) + pr.timeout >= pr.interval {
        p.problems.push((
            at("interval"),
            "a round (spacing × (count − 1) + timeout) must end before the next one starts"
                .to_owned(),
        ));
    }

    let (a, at) = (&config.actions, |k| root("actions").key(k));
    p.count(at("max-concurrent"), a.max_concurrent, 1, 1_000);
    p.duration(at("approval-timeout"), a.approval_timeout, MINUTE, 7 * DAY);
    p.count(at("max-output-bytes"), a.max_output_bytes, 0, 1_048_576);
    p.count(
        at("breaker-failures"),
        a.breaker_failures as usize,
        1,
        1_000,
    );
    for (i, r) in config.actions_rules.iter().enumerate() {
        let at = |k: &str| root("action").index(i).key(k);
        p.duration(at("per"), r.per, MINUTE, 30 * DAY);
        if let Some(t) = r.approval_timeout {
            p.duration(at("approval-timeout"), t, MINUTE, 7 * DAY);
        }
        for (key, n) in [
            ("max-runs", r.max_runs),
            ("max-runs-per-device", r.max_runs_per_device),
            ("breaker-failures", r.breaker_failures),
        ] {
            if let Some(n) = n {
                p.count(at(key), n as usize, 1, 100_000);
            }
        }
        for (j, s) in r.steps.iter().enumerate() {
            let at = |k: &str| root("action").index(i).key("step").index(j).key(k);
            p.duration(at("timeout"), s.timeout, 100 * MS, HOUR);
            p.count(at("retries"), s.retries as usize, 0, 10);
            if let Some(w) = s.wait_clear {
                p.duration(at("wait-clear"), w, SECOND, 7 * DAY);
            }
        }
    }

    let (an, at) = (&config.anomaly, |k| root("anomaly").key(k));
    if !an.season.is_zero() {
        p.duration(at("season"), an.season, HOUR, 366 * DAY);
    }
    p.count(at("buckets"), usize::from(an.buckets), 1, 10_080);
    p.count(at("warm-up"), an.warm_up as usize, 1, 1_000_000);
    p.count(at("shift-after"), an.shift_after as usize, 2, 100_000);
}

/// The ranges of an `agent` table (`[snmp.agent]`, a profile's, a device's) at `at`.
pub(super) fn agent(a: &AgentConfig, at: &KeyPath, problems: &mut Problems) {
    let mut p = Ranges { problems };
    if let Some(n) = a.columns_per_request {
        p.count(at.key("columns-per-request"), n, 1, 64);
    }
    // A reply of more than 500 values no longer fits a datagram most agents send.
    if let Some(n) = a.values_per_request {
        p.count(at.key("values-per-request"), n, 1, 500);
    }
    if let Some(n) = a.max_values_per_second {
        p.count(at.key("max-values-per-second"), n as usize, 10, 1_000_000);
    }
    if let Some(d) = a.discovery_interval {
        p.duration(at.key("discovery-interval"), d, MINUTE, DAY);
    }
}

/// Pushes "VALUE is out of range: expected MIN to MAX".
struct Ranges<'a> {
    problems: &'a mut Problems,
}

impl Ranges<'_> {
    fn count(&mut self, at: KeyPath, value: usize, min: usize, max: usize) {
        if !(min..=max).contains(&value) {
            let message = format!("{value} is out of range: expected {min} to {max}");
            self.problems.push((at, message));
        }
    }

    fn duration(&mut self, at: KeyPath, value: Duration, min: Duration, max: Duration) {
        if !(min..=max).contains(&value) {
            let show = |d: Duration| {
                // The largest unit that divides it, as the config would write it.
                let ms = d.as_millis();
                let units = [
                    (86_400_000, "d"),
                    (3_600_000, "h"),
                    (60_000, "m"),
                    (1_000, "s"),
                ];
                match units.iter().find(|(n, _)| ms > 0 && ms.is_multiple_of(*n)) {
                    Some((n, unit)) => format!("{}{unit}", ms / n),
                    None if ms == 0 => "0s".to_owned(),
                    None => format!("{ms}ms"),
                }
            };
            let message = format!(
                "{} is out of range: expected {} to {} ({DURATION_EXAMPLE})",
                show(value),
                show(min),
                show(max)
            );
            self.problems.push((at, message));
        }
    }
}
