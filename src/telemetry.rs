//! Every stage's Prometheus metrics and every fixed label set, declared in one place so names
//! stay consistent: `noctua_<stage>_<noun>_<unit>[_total]`, labels only from small fixed sets.
//!
//! Ground floor: the stages import from here, never the other way round. A fixed label is an
//! enum with `as_str`, so a label value cannot be misspelt at a call site, and every value is
//! pre-created so its series exists from the first scrape.

use prometheus::{
    CounterVec, Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Declares a fixed label set: an enum, its `ALL` values and their `as_str` names.
macro_rules! label_set {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $label:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The label value.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $label),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// Sums of the NetFlow counters (see [`Metrics::netflow_totals`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetflowTotals {
    /// Datagrams dropped.
    pub dropped: u64,
    /// Records decoded.
    pub records: u64,
    /// Octets in them.
    pub octets: u64,
    /// Data sets of unknown templates.
    pub unknown_template_sets: u64,
    /// Records refused by aggregation (late or future).
    pub refused: u64,
}

label_set! {
    /// Which connections an HTTP connection was served as (`noctua_http_connections`).
    HttpLane {
        /// Within `http.max-connections`: every route.
        Api => "api",
        /// In the reserve past it: health and metrics only.
        Reserve => "reserve",
    }
}

label_set! {
    /// Why an HTTP connection was closed unserved (`noctua_http_connections_refused_total`).
    HttpRefusal {
        /// The cap and its reserve were both full.
        Full => "full",
        /// Accepting failed (out of file descriptors, or a reset before accept).
        AcceptError => "accept_error",
    }
}

label_set! {
    /// Why ingest dropped a sample (`noctua_ingest_samples_dropped_total`).
    IngestDrop {
        /// Detection could not keep up.
        QueueFull => "queue_full",
        /// The pipeline was stopping.
        Shutdown => "shutdown",
    }
}

label_set! {
    /// Why a sample or event for a device another cluster member owns was not forwarded to it,
    /// or, received, was not taken.
    ForwardDrop {
        /// The forwarder could not keep up.
        QueueFull => "queue_full",
        /// No member holds the device's claim yet.
        NoOwner => "no_owner",
        /// NATS did not take the message.
        Publish => "publish",
        /// Received, but the device is no longer this member's.
        NotOwner => "not_owner",
        /// Received, but not a batch of samples.
        Malformed => "malformed",
    }
}

label_set! {
    /// Why a NetFlow/IPFIX datagram was dropped: every datagram received is either accepted
    /// (`noctua_netflow_datagrams_total`) or dropped for one of these.
    FlowDrop {
        /// From an address no exporter or CIDR allows.
        UnknownExporter => "unknown_exporter",
        /// No bytes.
        Empty => "empty",
        /// Shorter than its headers say.
        Truncated => "truncated",
        /// Not NetFlow v5, v9 or IPFIX.
        UnknownVersion => "unknown_version",
        /// A length field that cannot be right.
        BadLength => "bad_length",
        /// A template that cannot be applied.
        BadTemplate => "bad_template",
        /// The exporter already holds as many templates as allowed.
        TemplateLimit => "template_limit",
        /// The socket reported an error.
        ReceiveError => "receive_error",
        /// The kernel dropped it before the collector read it: the socket's receive buffer
        /// was full (`receive-buffer-bytes`; the collector was behind).
        SocketBuffer => "socket_buffer",
    }
}

label_set! {
    /// Why aggregation refused a flow record.
    FlowRefusal {
        /// Its interval was already emitted.
        Late => "late",
        /// It ends too far ahead of now.
        Future => "future",
    }
}

label_set! {
    /// Why an SNMP trap was dropped.
    TrapDrop {
        /// From an address that is no configured device.
        UnknownSource => "unknown_source",
        /// v1/v2c with the wrong community.
        Community => "community",
        /// v3 that failed authentication or privacy.
        Authentication => "authentication",
        /// Not a well-formed SNMP message.
        Malformed => "malformed",
        /// A version, PDU or security setting the receiver does not take.
        Unsupported => "unsupported",
        /// The socket reported an error.
        ReceiveError => "receive_error",
        /// The kernel dropped it before the collector read it: the socket's receive buffer
        /// was full (`receive-buffer-bytes`; the collector was behind).
        SocketBuffer => "socket_buffer",
    }
}

label_set! {
    /// Reports noctua's SNMP engine sends to v3 inform senders.
    EngineReport {
        /// The sender is learning the engine id.
        UnknownEngineId => "unknown_engine_id",
        /// The sender is learning the engine's boots and time.
        NotInTimeWindow => "not_in_time_window",
    }
}

label_set! {
    /// The result of one SNMP poll of a device.
    PollResult {
        /// Every value fetched.
        Ok => "ok",
        /// No answer in time.
        Timeout => "timeout",
        /// The network refused (unreachable, connection refused).
        Network => "network",
        /// No session could be made.
        Session => "session",
        /// The agent answered with an error.
        Agent => "agent",
    }
}

label_set! {
    /// Why an interface interval was not turned into samples.
    SnmpSkip {
        /// sysUpTime went back: the agent restarted.
        AgentRestart => "agent_restart",
        /// ifCounterDiscontinuityTime moved.
        Discontinuity => "discontinuity",
        /// A rate above the interface speed.
        Impossible => "impossible_rate",
        /// Too little time since the previous reading.
        TooSoon => "too_soon",
    }
}

label_set! {
    /// Why the poller read a device's whole interface table again.
    Discovery {
        /// The device's first poll.
        First => "first",
        /// `discovery-interval` passed.
        Interval => "interval",
        /// sysUpTime went back: the agent restarted, and may have renumbered its interfaces.
        Restart => "restart",
        /// ifTableLastChange moved: a row was added or removed.
        LastChange => "last_change",
        /// A routine poll found rows or columns the last discovery did not.
        Changed => "changed",
    }
}

label_set! {
    /// Why detection refused a sample.
    Rejection {
        /// NaN or infinite.
        NotFinite => "not_finite",
        /// Below zero for a metric that cannot be.
        Negative => "negative",
        /// Above the metric's ceiling (a loss over 100 %, say).
        Absurd => "absurd",
        /// Older than the series' last sample.
        OutOfOrder => "out_of_order",
        /// The same instant as the series' last sample.
        Duplicate => "duplicate",
    }
}

label_set! {
    /// Whether a flush or a reload worked.
    Outcome {
        /// It did.
        Ok => "ok",
        /// It did not.
        Error => "error",
    }
}

/// The registry and a handle to every metric.
pub struct Metrics {
    registry: Registry,
    /// Samples accepted by ingest.
    pub ingest_samples: IntCounter,
    /// Samples dropped by ingest, by reason (`queue_full`, `shutdown`).
    pub ingest_dropped: IntCounterVec,
    /// Samples seen by detection.
    pub detect_samples: IntCounter,
    /// Series detection follows.
    pub detect_series: IntGauge,
    /// Verdicts by severity.
    pub detect_verdicts: IntCounterVec,
    /// Samples refused by detection, by reason.
    pub detect_rejected: IntCounterVec,
    /// Committed alarm transitions by kind.
    pub alarm_transitions: IntCounterVec,
    /// Alarms active now.
    pub alarm_active: IntGauge,
    /// Transitions the store refused.
    pub alarm_commit_errors: IntCounter,
    /// Transitions recorded but not notified (root cause, flapping, maintenance).
    pub alarm_suppressed: IntCounter,
    /// Service status changes committed.
    pub service_changes: IntCounter,
    /// Services not ok now.
    pub services_not_ok: IntGauge,
    /// Customers known (a total only: nothing customer-level is a label).
    pub customers: IntGauge,
    /// Customer rows imported.
    pub customer_rows_imported: IntCounter,
    /// Customer rows refused (the import they were in stored nothing).
    pub customer_rows_refused: IntCounter,
    /// Complaint changes committed (received, linked, answered, resolved, targets passed).
    pub complaint_changes: IntCounter,
    /// Actions that ended, by rule and final state (succeeded, failed, unknown, ...).
    pub actions_ended: IntCounterVec,
    /// Actions not ended, by state (awaiting-approval, paused, queued, running).
    pub actions_open: IntGaugeVec,
    /// Rules whose breaker is open (1) or closed (0).
    pub action_breaker_open: IntGaugeVec,
    /// Time a live step took, by rule and kind (exec, webhook).
    pub action_step_seconds: HistogramVec,
    /// Complaints not resolved now.
    pub complaints_open: IntGauge,
    /// Open complaints past their response target, unanswered.
    pub complaints_respond_overdue: IntGauge,
    /// Open complaints past their resolve target.
    pub complaints_resolve_overdue: IntGauge,
    /// Time to acknowledge, by peak severity and category.
    pub fault_time_to_acknowledge: HistogramVec,
    /// Time to repair, by peak severity and category.
    pub fault_time_to_repair: HistogramVec,
    /// Entries removed by retention.
    pub store_compacted: IntCounter,
    /// Store size on disk.
    pub store_size: IntGauge,
    /// Group-commit flushes by result (`ok`, `error`).
    pub store_flushes: IntCounterVec,
    /// Errors from the store (any read, write or flush); the first one stops the daemon.
    pub store_errors: IntCounter,
    /// Group-commit flush latency.
    pub store_flush_seconds: Histogram,
    /// Config reloads by result (`ok`, `error`).
    pub config_reloads: IntCounterVec,
    /// Clients following the live alarm stream.
    pub http_sse_clients: IntGauge,
    /// Open HTTP connections by lane.
    pub http_connections: IntGaugeVec,
    /// HTTP connections closed unserved, by reason.
    pub http_refused: IntCounterVec,
    /// HTTP requests by matched route and status code.
    pub http_requests: IntCounterVec,
    /// Transitions waiting for the MQTT broker.
    pub mqtt_outbox_depth: IntGauge,
    /// Transitions the broker acknowledged.
    pub mqtt_published: IntCounter,
    /// Transitions dropped because the outbox was full.
    pub mqtt_outbox_dropped: IntCounter,
    /// 1 while connected to the broker.
    pub mqtt_connected: IntGauge,
    /// From a transition to the broker's acknowledgement of it.
    pub mqtt_publish_latency: Histogram,
    /// 1 while connected to the cluster's NATS servers.
    pub cluster_connected: IntGauge,
    /// Live members of the cluster, this instance included (0 when not clustered).
    pub cluster_members: IntGauge,
    /// Devices this instance owns in the cluster.
    pub cluster_devices_owned: IntGauge,
    /// The highest epoch among the devices this instance owns.
    pub cluster_epoch: IntGauge,
    /// Configured devices no member holds a claim on, as this instance last saw the claims.
    pub cluster_devices_unowned: IntGauge,
    /// Devices this instance took over (from a dead member, a release, or no owner).
    pub cluster_taken: IntCounter,
    /// Devices this instance gave up: released to their new owner, or found taken over.
    pub cluster_given_up: IntCounter,
    /// Replicated writes the cluster refused because the device's claim had moved on.
    pub cluster_refused_writes: IntCounter,
    /// Transitions replicated to the cluster (device record and stream).
    pub cluster_replicated: IntCounter,
    /// Transitions of devices this member does not own, left out of replication.
    pub cluster_not_replicated: IntCounter,
    /// Samples and events sent on to the member that owns their device.
    pub cluster_forwarded: IntCounter,
    /// Samples and events another member sent on to this one, taken into its pipeline.
    pub cluster_forward_received: IntCounter,
    /// Samples and events not forwarded or not taken, by reason.
    pub cluster_forward_dropped: IntCounterVec,
    /// NetFlow/IPFIX datagrams accepted (decoded to the end), by exporter (a configured
    /// device, or `other` for every exporter allowed by CIDR only) and version.
    pub netflow_datagrams: IntCounterVec,
    /// NetFlow/IPFIX data records decoded (not template or options records), by exporter and
    /// version.
    pub netflow_records: IntCounterVec,
    /// Octets in decoded records as exported (before sampling is scaled up), by exporter.
    pub netflow_octets: IntCounterVec,
    /// Datagrams read from the sockets: accepted plus dropped.
    pub netflow_received: IntCounter,
    /// Datagrams dropped, by reason.
    pub netflow_dropped: IntCounterVec,
    /// Data sets skipped in accepted datagrams because their template is not (yet) known.
    pub netflow_unknown_template_sets: IntCounter,
    /// Exporters allowed by CIDR only that were evicted from the pool for a newer one.
    pub netflow_exporters_evicted: IntCounter,
    /// Records refused by aggregation, by reason (`late`, `future`).
    pub netflow_refused: IntCounterVec,
    /// Templates held.
    pub netflow_templates: IntGauge,
    /// From a flow's end to its arrival.
    pub netflow_lag: Histogram,
    /// SNMP polls by device and result (`ok`, `timeout`, `session`, `agent`).
    pub snmp_polls: IntCounterVec,
    /// Values (varbinds) fetched by the poller.
    pub snmp_values: IntCounter,
    /// SNMP sessions made (v2c: one per poll; v3: one per device, and one after a failure).
    pub snmp_sessions: IntCounter,
    /// Duration of a whole poll of a device.
    pub snmp_poll_seconds: Histogram,
    /// Interface intervals not turned into samples, by reason.
    pub snmp_skipped: IntCounterVec,
    /// Traps taken, by device and kind.
    pub snmp_traps: IntCounterVec,
    /// Traps dropped, by reason.
    pub snmp_traps_dropped: IntCounterVec,
    /// Reports noctua's SNMP engine sent to v3 inform senders, by kind.
    pub snmp_engine_reports: IntCounterVec,
    /// How late a scheduled poll started against its planned time.
    pub snmp_poll_delay: Histogram,
    /// From an ingest item's arrival to its transition committed and on the bus.
    pub pipeline_latency: Histogram,
    /// SNMP requests held back by a device's `max-values-per-second`, by device.
    pub snmp_budget_waits: IntCounterVec,
    /// Seconds SNMP requests were held back by a device's budget, by device.
    pub snmp_budget_delay: CounterVec,
    /// Discoveries of a device's interface table, by reason.
    pub snmp_discoveries: IntCounterVec,
    /// ICMP echo requests sent, by device.
    pub probe_sent: IntCounterVec,
    /// ICMP echo requests without a reply in time, by device.
    pub probe_lost: IntCounterVec,
}

/// Registration only fails on a duplicate or malformed name, which is fixed at compile time
/// below; the tests register everything, so a mistake fails `cargo test`, not a running daemon.
fn must<T>(r: prometheus::Result<T>) -> T {
    r.unwrap_or_else(|e| panic!("metric definition error: {e}"))
}

impl Metrics {
    /// Registers every metric plus build info and the process collector.
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| {
            let c = must(IntCounter::new(name, help));
            must(registry.register(Box::new(c.clone())));
            c
        };
        let counter_vec = |name: &str, help: &str, label: &str| {
            let c = must(IntCounterVec::new(Opts::new(name, help), &[label]));
            must(registry.register(Box::new(c.clone())));
            c
        };
        let gauge = |name: &str, help: &str| {
            let g = must(IntGauge::new(name, help));
            must(registry.register(Box::new(g.clone())));
            g
        };
        let build = must(IntGaugeVec::new(
            Opts::new(
                "noctua_build_info",
                "Build of the running noctua; always 1.",
            ),
            &["version"],
        ));
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        must(registry.register(Box::new(build)));
        #[cfg(target_os = "linux")]
        must(registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        )));
        let flush = must(Histogram::with_opts(
            HistogramOpts::new(
                "noctua_store_flush_duration_seconds",
                "Time to flush one group commit to disk.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5,
            ]),
        ));
        must(registry.register(Box::new(flush.clone())));
        // Response-time buckets from a minute to two days: tier targets are 15 min to 48 h.
        let response_buckets = vec![
            60.0,
            300.0,
            900.0,
            1800.0,
            3600.0,
            4.0 * 3600.0,
            8.0 * 3600.0,
            86400.0,
            172800.0,
        ];
        let histogram_vec = |name: &str, help: &str| {
            let h = must(HistogramVec::new(
                HistogramOpts::new(name, help).buckets(response_buckets.clone()),
                &["severity", "category"],
            ));
            must(registry.register(Box::new(h.clone())));
            h
        };
        let latency = must(Histogram::with_opts(
            HistogramOpts::new(
                "noctua_mqtt_publish_latency_seconds",
                "From an alarm transition to the broker's acknowledgement of it.",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0, 300.0,
            ]),
        ));
        must(registry.register(Box::new(latency.clone())));
        let lag = must(Histogram::with_opts(
            HistogramOpts::new(
                "noctua_netflow_ingest_lag_seconds",
                "From the end of the newest flow in a datagram to its arrival.",
            )
            .buckets(vec![1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0]),
        ));
        must(registry.register(Box::new(lag.clone())));
        let counter_vec2 = |name: &str, help: &str| {
            let c = must(IntCounterVec::new(
                Opts::new(name, help),
                &["exporter", "version"],
            ));
            must(registry.register(Box::new(c.clone())));
            c
        };
        let poll = must(Histogram::with_opts(
            HistogramOpts::new(
                "noctua_snmp_poll_duration_seconds",
                "Time to poll one device (sysUpTime, the interface table and the profile's OIDs).",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
        ));
        must(registry.register(Box::new(poll.clone())));
        let delay = must(Histogram::with_opts(
            HistogramOpts::new(
                "noctua_snmp_poll_delay_seconds",
                "How late a scheduled SNMP poll started against its planned time (waiting for max-in-flight, or for the runtime).",
            )
            .buckets(vec![0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0]),
        ));
        must(registry.register(Box::new(delay.clone())));
        let pipeline = must(Histogram::with_opts(
            HistogramOpts::new(
                "noctua_pipeline_latency_seconds",
                "From a sample or event offered by ingest to its alarm transition committed and on the bus the SSE streams and MQTT publish from.",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
        ));
        must(registry.register(Box::new(pipeline.clone())));
        let m = Self {
            snmp_polls: {
                let c = must(IntCounterVec::new(
                    Opts::new(
                        "noctua_snmp_polls_total",
                        "SNMP polls by device and result (ok, timeout, session, agent).",
                    ),
                    &["device", "result"],
                ));
                must(registry.register(Box::new(c.clone())));
                c
            },
            snmp_values: counter(
                "noctua_snmp_values_fetched_total",
                "Values (varbinds) fetched by the SNMP poller.",
            ),
            snmp_sessions: counter(
                "noctua_snmp_sessions_created_total",
                "SNMP sessions made: v2c one per poll (not kept between polls), v3 one per device and a new one after every failed request.",
            ),
            snmp_poll_seconds: poll,
            pipeline_latency: pipeline,
            snmp_poll_delay: delay,
            snmp_budget_waits: counter_vec(
                "noctua_snmp_budget_waits_total",
                "SNMP requests held back so that a device's agent is not asked for more than its max-values-per-second, by device.",
                "device",
            ),
            snmp_budget_delay: {
                let c = must(CounterVec::new(
                    Opts::new(
                        "noctua_snmp_budget_delay_seconds_total",
                        "Seconds SNMP requests were held back by a device's max-values-per-second, by device.",
                    ),
                    &["device"],
                ));
                must(registry.register(Box::new(c.clone())));
                c
            },
            snmp_discoveries: counter_vec(
                "noctua_snmp_discoveries_total",
                "Full reads of a device's interface table, by reason (first, interval, restart, last_change, changed).",
                "reason",
            ),
            probe_sent: counter_vec(
                "noctua_probe_sent_total",
                "ICMP echo requests sent, by device.",
                "device",
            ),
            probe_lost: counter_vec(
                "noctua_probe_lost_total",
                "ICMP echo requests without a reply in time, by device.",
                "device",
            ),
            snmp_traps: {
                let c = must(IntCounterVec::new(
                    Opts::new(
                        "noctua_snmp_traps_total",
                        "SNMP traps and informs taken, by device and kind (link_down, link_up, cold_start, warm_start, authentication_failure, other).",
                    ),
                    &["device", "kind"],
                ));
                must(registry.register(Box::new(c.clone())));
                c
            },
            snmp_traps_dropped: counter_vec(
                "noctua_snmp_traps_dropped_total",
                "SNMP traps dropped, by reason (unknown_source, community, authentication, malformed, unsupported, receive_error).",
                "reason",
            ),
            snmp_engine_reports: counter_vec(
                "noctua_snmp_engine_reports_total",
                "Reports noctua's SNMP engine sent to SNMPv3 inform senders learning its id or clock (unknown_engine_id, not_in_time_window).",
                "kind",
            ),
            snmp_skipped: counter_vec(
                "noctua_snmp_intervals_skipped_total",
                "Interface intervals not turned into samples (agent restart, counter discontinuity, impossible rate).",
                "reason",
            ),
            netflow_datagrams: counter_vec2(
                "noctua_netflow_datagrams_total",
                "NetFlow/IPFIX datagrams accepted, by exporter and version.",
            ),
            netflow_records: counter_vec2(
                "noctua_netflow_records_total",
                "NetFlow/IPFIX data records decoded (template and options records excluded).",
            ),
            netflow_octets: counter_vec(
                "noctua_netflow_octets_total",
                "Octets in decoded flow records as exported, before sampling is scaled up.",
                "exporter",
            ),
            netflow_received: counter(
                "noctua_netflow_received_datagrams_total",
                "NetFlow/IPFIX datagrams read: the accepted (datagrams_total) plus the dropped.",
            ),
            netflow_dropped: counter_vec(
                "noctua_netflow_dropped_total",
                "NetFlow/IPFIX datagrams dropped, by reason.",
                "reason",
            ),
            netflow_unknown_template_sets: counter(
                "noctua_netflow_unknown_template_sets_total",
                "Data sets skipped in accepted datagrams: their template is not (yet) known.",
            ),
            netflow_exporters_evicted: counter(
                "noctua_netflow_exporters_evicted_total",
                "Exporters allowed by CIDR only, evicted (least recently heard) for a newer one.",
            ),
            netflow_refused: counter_vec(
                "noctua_netflow_records_refused_total",
                "Flow records refused by aggregation: late (interval already emitted) or future.",
                "reason",
            ),
            netflow_templates: gauge(
                "noctua_netflow_templates",
                "NetFlow v9/IPFIX templates held.",
            ),
            netflow_lag: lag,
            ingest_samples: counter(
                "noctua_ingest_samples_total",
                "Samples handed from ingest to detection.",
            ),
            ingest_dropped: counter_vec(
                "noctua_ingest_samples_dropped_total",
                "Samples dropped by ingest because detection could not keep up or was stopping.",
                "reason",
            ),
            detect_series: gauge(
                "noctua_detect_series",
                "Series the detector follows (thresholds and anomaly state), since the start or as restored.",
            ),
            detect_samples: counter(
                "noctua_detect_samples_total",
                "Samples evaluated by detection.",
            ),
            detect_verdicts: counter_vec(
                "noctua_detect_verdicts_total",
                "Tier changes found by detection, by new severity.",
                "severity",
            ),
            detect_rejected: counter_vec(
                "noctua_detect_samples_rejected_total",
                "Samples detection refused (not finite, negative, absurd, out of order, duplicate).",
                "reason",
            ),
            alarm_transitions: counter_vec(
                "noctua_alarm_transitions_total",
                "Alarm transitions committed to the store, by kind.",
                "kind",
            ),
            alarm_active: gauge("noctua_alarm_active_alarms", "Alarms active now."),
            alarm_commit_errors: counter(
                "noctua_alarm_commit_errors_total",
                "Alarm transitions the store refused.",
            ),
            alarm_suppressed: counter(
                "noctua_alarm_suppressed_transitions_total",
                "Alarm transitions recorded but not notified (root cause, flapping, maintenance).",
            ),
            service_changes: counter(
                "noctua_service_changes_total",
                "Service status changes committed to the store.",
            ),
            services_not_ok: gauge("noctua_services_not_ok", "Services degraded or down now."),
            customers: gauge("noctua_customers", "Customers known from imports."),
            customer_rows_imported: counter(
                "noctua_customer_rows_imported_total",
                "Customer rows imported.",
            ),
            customer_rows_refused: counter(
                "noctua_customer_rows_refused_total",
                "Customer rows refused; the import they came in stored nothing.",
            ),
            complaint_changes: counter(
                "noctua_complaint_changes_total",
                "Complaint changes committed (received, linked, answered, resolved, overdue).",
            ),
            complaints_open: gauge("noctua_complaints_open", "Complaints not resolved now."),
            actions_ended: {
                let c = must(IntCounterVec::new(
                    Opts::new(
                        "noctua_actions_total",
                        "Automated actions that ended, by rule and final state.",
                    ),
                    &["rule", "state"],
                ));
                must(registry.register(Box::new(c.clone())));
                c
            },
            actions_open: {
                let g = must(IntGaugeVec::new(
                    Opts::new(
                        "noctua_actions_open",
                        "Automated actions not ended, by state.",
                    ),
                    &["state"],
                ));
                must(registry.register(Box::new(g.clone())));
                for state in ["awaiting-approval", "paused", "queued", "running"] {
                    g.with_label_values(&[state]).set(0);
                }
                g
            },
            action_breaker_open: {
                let g = must(IntGaugeVec::new(
                    Opts::new(
                        "noctua_action_breaker_open",
                        "1 while an action rule's breaker is open (the rule is disabled).",
                    ),
                    &["rule"],
                ));
                must(registry.register(Box::new(g.clone())));
                g
            },
            action_step_seconds: {
                let h = must(HistogramVec::new(
                    HistogramOpts::new(
                        "noctua_action_step_duration_seconds",
                        "Time a live action step took, by rule and kind.",
                    )
                    .buckets(vec![0.01, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0]),
                    &["rule", "kind"],
                ));
                must(registry.register(Box::new(h.clone())));
                h
            },
            complaints_respond_overdue: gauge(
                "noctua_complaints_respond_overdue",
                "Open complaints past their response target, unanswered.",
            ),
            complaints_resolve_overdue: gauge(
                "noctua_complaints_resolve_overdue",
                "Open complaints past their resolve target.",
            ),
            fault_time_to_acknowledge: histogram_vec(
                "noctua_fault_time_to_acknowledge_seconds",
                "Time from raise to first acknowledgement, maintenance excluded.",
            ),
            fault_time_to_repair: histogram_vec(
                "noctua_fault_time_to_repair_seconds",
                "Time from raise to clear, maintenance excluded.",
            ),
            store_compacted: counter(
                "noctua_store_compacted_entries_total",
                "History entries and closed faults removed by retention.",
            ),
            store_size: gauge("noctua_store_size_bytes", "Size of the sled store on disk."),
            store_flushes: counter_vec(
                "noctua_store_flushes_total",
                "Group-commit flushes, by result.",
                "result",
            ),
            store_errors: counter(
                "noctua_store_errors_total",
                "Store read, write and flush errors; the first one stops noctua for a restart.",
            ),
            store_flush_seconds: flush,
            config_reloads: counter_vec(
                "noctua_config_reloads_total",
                "Config reloads on SIGHUP, by result.",
                "result",
            ),
            http_sse_clients: gauge(
                "noctua_http_sse_clients",
                "Clients following the live alarm stream.",
            ),
            http_connections: {
                let g = must(IntGaugeVec::new(
                    Opts::new(
                        "noctua_http_connections",
                        "Open HTTP connections, by lane (api, or the health and metrics reserve).",
                    ),
                    &["lane"],
                ));
                must(registry.register(Box::new(g.clone())));
                g
            },
            http_refused: counter_vec(
                "noctua_http_connections_refused_total",
                "HTTP connections closed unserved, by reason.",
                "reason",
            ),
            http_requests: {
                let c = must(IntCounterVec::new(
                    Opts::new(
                        "noctua_http_requests_total",
                        "HTTP requests by route (the matched pattern, never the raw path) and status.",
                    ),
                    &["route", "status"],
                ));
                must(registry.register(Box::new(c.clone())));
                c
            },
            mqtt_outbox_depth: gauge(
                "noctua_mqtt_outbox_depth",
                "Alarm transitions waiting for the MQTT broker.",
            ),
            mqtt_published: counter(
                "noctua_mqtt_published_total",
                "Alarm transitions the MQTT broker acknowledged.",
            ),
            mqtt_outbox_dropped: counter(
                "noctua_mqtt_outbox_dropped_total",
                "Alarm transitions dropped because the MQTT outbox was full.",
            ),
            mqtt_connected: gauge(
                "noctua_mqtt_connected",
                "1 while connected to the MQTT broker.",
            ),
            mqtt_publish_latency: latency,
            cluster_connected: gauge(
                "noctua_cluster_connected",
                "1 while connected to the cluster's NATS servers.",
            ),
            cluster_members: gauge(
                "noctua_cluster_members",
                "Live members of the cluster, this instance included (0 when not clustered).",
            ),
            cluster_devices_owned: gauge(
                "noctua_cluster_devices_owned",
                "Devices this instance owns in the cluster.",
            ),
            cluster_epoch: gauge(
                "noctua_cluster_epoch",
                "The highest ownership epoch among the devices this instance owns.",
            ),
            cluster_devices_unowned: gauge(
                "noctua_cluster_devices_unowned",
                "Configured devices no cluster member holds a claim on, as this instance last saw the claims.",
            ),
            cluster_taken: counter(
                "noctua_cluster_devices_taken_total",
                "Devices this instance took over: from a dead member, a release, or no owner.",
            ),
            cluster_given_up: counter(
                "noctua_cluster_devices_given_up_total",
                "Devices this instance gave up: released to their new owner, or found taken over.",
            ),
            cluster_refused_writes: counter(
                "noctua_cluster_refused_writes_total",
                "Replicated writes refused because the device's claim had moved on (a stale owner).",
            ),
            cluster_replicated: counter(
                "noctua_cluster_transitions_replicated_total",
                "Alarm transitions replicated to the cluster: the device's record, then the stream.",
            ),
            cluster_not_replicated: counter(
                "noctua_cluster_transitions_not_owned_total",
                "Alarm transitions of devices this member does not own, left out of replication.",
            ),
            cluster_forwarded: counter(
                "noctua_cluster_forwarded_total",
                "Samples and events sent on to the cluster member that owns their device.",
            ),
            cluster_forward_received: counter(
                "noctua_cluster_forward_received_total",
                "Samples and events another cluster member sent on to this one and it took.",
            ),
            cluster_forward_dropped: counter_vec(
                "noctua_cluster_forward_dropped_total",
                "Samples and events not forwarded to their device's owner, or not taken from another member, by reason.",
                "reason",
            ),
            registry,
        };
        // Pre-create the fixed label values so every series exists from the first scrape.
        for r in IngestDrop::ALL {
            m.ingest_dropped.with_label_values(&[r.as_str()]);
        }
        for r in ForwardDrop::ALL {
            m.cluster_forward_dropped.with_label_values(&[r.as_str()]);
        }
        for r in FlowDrop::ALL {
            m.netflow_dropped.with_label_values(&[r.as_str()]);
        }
        for r in FlowRefusal::ALL {
            m.netflow_refused.with_label_values(&[r.as_str()]);
        }
        for r in TrapDrop::ALL {
            m.snmp_traps_dropped.with_label_values(&[r.as_str()]);
        }
        for k in EngineReport::ALL {
            m.snmp_engine_reports.with_label_values(&[k.as_str()]);
        }
        for r in Discovery::ALL {
            m.snmp_discoveries.with_label_values(&[r.as_str()]);
        }
        for r in SnmpSkip::ALL {
            m.snmp_skipped.with_label_values(&[r.as_str()]);
        }
        for r in Rejection::ALL {
            m.detect_rejected.with_label_values(&[r.as_str()]);
        }
        for l in HttpLane::ALL {
            m.http_connections.with_label_values(&[l.as_str()]);
        }
        for r in HttpRefusal::ALL {
            m.http_refused.with_label_values(&[r.as_str()]);
        }
        for r in Outcome::ALL {
            m.store_flushes.with_label_values(&[r.as_str()]);
            m.config_reloads.with_label_values(&[r.as_str()]);
        }
        m
    }

    /// The open-connection gauge of one lane.
    pub fn http_lane(&self, lane: HttpLane) -> IntGauge {
        self.http_connections.with_label_values(&[lane.as_str()])
    }

    /// The counter of one refusal reason.
    pub fn http_refusal(&self, reason: HttpRefusal) -> IntCounter {
        self.http_refused.with_label_values(&[reason.as_str()])
    }

    /// What the NetFlow collector counted, summed over exporters, versions and reasons.
    pub fn netflow_totals(&self) -> NetflowTotals {
        let sum = |c: &IntCounterVec| -> u64 {
            prometheus::core::Collector::collect(c)
                .iter()
                .flat_map(|family| family.get_metric())
                .map(|m| m.get_counter().value() as u64)
                .sum()
        };
        NetflowTotals {
            dropped: sum(&self.netflow_dropped),
            records: sum(&self.netflow_records),
            octets: sum(&self.netflow_octets),
            unknown_template_sets: self.netflow_unknown_template_sets.get(),
            refused: sum(&self.netflow_refused),
        }
    }

    /// The drop counter of one ingest reason.
    pub fn ingest_drop(&self, reason: IngestDrop) -> IntCounter {
        self.ingest_dropped.with_label_values(&[reason.as_str()])
    }

    /// The forwarding-drop counter for `reason`.
    pub fn forward_drop(&self, reason: ForwardDrop) -> IntCounter {
        self.cluster_forward_dropped
            .with_label_values(&[reason.as_str()])
    }

    /// The drop counter of one NetFlow reason.
    pub fn flow_drop(&self, reason: FlowDrop) -> IntCounter {
        self.netflow_dropped.with_label_values(&[reason.as_str()])
    }

    /// The refusal counter of one aggregation reason.
    pub fn flow_refusal(&self, reason: FlowRefusal) -> IntCounter {
        self.netflow_refused.with_label_values(&[reason.as_str()])
    }

    /// The drop counter of one trap reason.
    pub fn trap_drop(&self, reason: TrapDrop) -> IntCounter {
        self.snmp_traps_dropped
            .with_label_values(&[reason.as_str()])
    }

    /// The counter of one engine report kind.
    pub fn engine_report(&self, kind: EngineReport) -> IntCounter {
        self.snmp_engine_reports.with_label_values(&[kind.as_str()])
    }

    /// The poll counter of one device and result.
    pub fn snmp_poll(&self, device: &str, result: PollResult) -> IntCounter {
        self.snmp_polls
            .with_label_values(&[device, result.as_str()])
    }

    /// The skip counter of one reason.
    pub fn snmp_skip(&self, reason: SnmpSkip) -> IntCounter {
        self.snmp_skipped.with_label_values(&[reason.as_str()])
    }

    /// The refusal counter of one detection reason.
    pub fn rejection(&self, reason: Rejection) -> IntCounter {
        self.detect_rejected.with_label_values(&[reason.as_str()])
    }

    /// The flush counter of one outcome.
    pub fn store_flush(&self, outcome: Outcome) -> IntCounter {
        self.store_flushes.with_label_values(&[outcome.as_str()])
    }

    /// The reload counter of one outcome.
    pub fn config_reload(&self, outcome: Outcome) -> IntCounter {
        self.config_reloads.with_label_values(&[outcome.as_str()])
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding into a Vec only fails on a metric family without metrics, which the
        // registry never returns.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_registered_and_named_by_convention() {
        let m = Metrics::new();
        m.ingest_samples.inc();
        let text = m.render();
        for name in [
            "noctua_build_info",
            "noctua_ingest_samples_total 1",
            "noctua_ingest_samples_dropped_total{reason=\"queue_full\"} 0",
            "noctua_store_flushes_total{result=\"error\"} 0",
            "noctua_config_reloads_total{result=\"ok\"} 0",
        ] {
            assert!(text.contains(name), "missing {name} in\n{text}");
        }
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(
                line.starts_with("noctua_") || line.starts_with("process_"),
                "unexpected metric {line}"
            );
        }
    }
}
