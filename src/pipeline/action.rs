//! Automated handling, carried out: the alarm stage's side (the planner, the steps handed to
//! the runner and not yet reported) and the runner, which runs `exec` and `webhook` steps
//! only after the alarm stage has made their start durable, and reports how each ended.

use std::collections::HashSet;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, watch};

use crate::action::{Changes, Order, Planner};
use crate::alarm::AlarmManager;
use crate::config::Config;
use crate::model::{
    ActionId, AlarmId, SetValue, StepOutcome, StepPlan, StepResult, Timestamp, printable,
};
use crate::store::{Store, StoreError};
use crate::telemetry::Metrics;

/// A step's report: which action, which step, how it ended.
pub type Report = (ActionId, usize, StepResult);

/// The alarm stage's side of automated handling.
pub struct Handling {
    /// What decides.
    pub planner: Planner,
    /// Reports from the runner.
    pub reports: mpsc::Receiver<Report>,
    orders: mpsc::UnboundedSender<Order>,
    in_flight: HashSet<(ActionId, usize)>,
    live: bool,
}

impl Handling {
    /// The planner restored from the store, and what restoring changed (to commit first).
    pub fn load(
        config: &Config,
        store: &Store,
        manager: &AlarmManager,
        live: bool,
        orders: mpsc::UnboundedSender<Order>,
        reports: mpsc::Receiver<Report>,
    ) -> Result<(Self, Changes), StoreError> {
        let (planner, changes) = restore(config, store, manager, live, &HashSet::new())?;
        let handling = Self {
            planner,
            reports,
            orders,
            in_flight: HashSet::new(),
            live,
        };
        Ok((handling, changes))
    }

    /// Hands the runner the steps of a batch now durable.
    pub fn dispatch(&mut self, orders: Vec<Order>) {
        for o in orders {
            self.in_flight.insert((o.action, o.step));
            // The runner ends only after the alarm stage; a send cannot fail before that.
            let _ = self.orders.send(o);
        }
    }

    /// A step reported back.
    pub fn reported(&mut self, id: ActionId, step: usize) {
        self.in_flight.remove(&(id, step));
    }

    /// Whether steps handed to the runner have not reported yet.
    pub fn waiting(&self) -> bool {
        !self.in_flight.is_empty()
    }

    /// After a failed commit: the planner again from the store, keeping the steps the runner
    /// really has (their reports still count).
    pub fn reload(
        &mut self,
        config: &Config,
        store: &Store,
        manager: &AlarmManager,
    ) -> Result<Changes, StoreError> {
        let (planner, changes) = restore(config, store, manager, self.live, &self.in_flight)?;
        self.planner = planner;
        Ok(changes)
    }
}

fn restore(
    config: &Config,
    store: &Store,
    manager: &AlarmManager,
    live: bool,
    in_flight: &HashSet<(ActionId, usize)>,
) -> Result<(Planner, Changes), StoreError> {
    let active: HashSet<AlarmId> = manager.alarms().map(|a| a.alarm_id).collect();
    Ok(Planner::restore(
        config,
        live,
        store.actions()?,
        store.rule_states()?,
        &active,
        in_flight,
        Timestamp::now(),
    ))
}

/// Runs each order it is given as its own task, and reports each outcome. Ends when the
/// orders' sender is gone; steps still running then are left to end by themselves (their
/// reports are taken while the alarm stage drains, else a restart marks them unknown).
pub async fn run(
    mut orders: mpsc::UnboundedReceiver<Order>,
    reports: mpsc::Sender<Report>,
    config: watch::Receiver<Arc<Config>>,
    metrics: Arc<Metrics>,
) {
    while let Some(order) = orders.recv().await {
        let config = config.borrow().clone();
        let reports = reports.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let kind = order.plan.kind();
            tracing::info!(action = %order.action, step = order.step + 1, rule = %order.rule, "{}", order.plan.describe());
            let result = run_step(&order, &config).await;
            metrics
                .action_step_seconds
                .with_label_values(&[&order.rule, kind])
                .observe(started.elapsed().as_secs_f64());
            tracing::info!(action = %order.action, step = order.step + 1, outcome = result.outcome.name(), "{}", result.detail);
            let _ = reports.send((order.action, order.step, result)).await;
        });
    }
}

/// One step, as configured now: the program must still be allowed, secrets come from the
/// config and never from the record.
async fn run_step(order: &Order, config: &Config) -> StepResult {
    let step = config
        .actions_rules
        .iter()
        .find(|r| r.name == order.rule)
        .and_then(|r| r.steps.get(order.step));
    let max = config.actions.max_output_bytes;
    let secrets = step.map(|s| s.secrets.as_slice()).unwrap_or_default();
    match &order.plan {
        StepPlan::Exec {
            argv, timeout_ms, ..
        } => {
            let allowed = argv.first().is_some_and(|p| {
                config
                    .actions
                    .allow_exec
                    .iter()
                    .any(|a| a.as_os_str() == p.as_str())
            });
            if !allowed || !config.actions.enabled {
                return failed(
                    "not run: the program is no longer on [actions] allow-exec, or actions are disabled",
                );
            }
            let env: Vec<(String, String)> = config
                .actions
                .env
                .iter()
                .filter_map(|k| std::env::var(k).ok().map(|v| (k.clone(), v)))
                .chain(
                    secrets
                        .iter()
                        .filter(|(k, _)| !k.is_empty())
                        .map(|(k, v)| (k.clone(), v.expose().to_owned())),
                )
                .collect();
            exec(argv, &env, Duration::from_millis(*timeout_ms), max).await
        }
        StepPlan::Webhook {
            url,
            body,
            timeout_ms,
            retries,
        } => {
            if !config.actions.enabled {
                return failed("not run: actions are disabled");
            }
            let token = secrets
                .iter()
                .find(|(k, _)| k.is_empty())
                .map(|(_, v)| v.clone());
            webhook(
                url,
                body,
                token,
                Duration::from_millis(*timeout_ms),
                *retries,
                max,
            )
            .await
        }
        StepPlan::SnmpSet {
            oid,
            value,
            timeout_ms,
        } => {
            if !config.actions.enabled {
                return failed("not run: actions are disabled");
            }
            snmp_set(
                config,
                &order.device,
                oid,
                value,
                Duration::from_millis(*timeout_ms),
            )
            .await
        }
        StepPlan::Notify {
            topic,
            payload,
            timeout_ms,
        } => {
            if !config.actions.enabled || !config.mqtt.enabled {
                return failed("not run: actions or [mqtt] are disabled");
            }
            let timeout = Duration::from_millis(*timeout_ms);
            match crate::northbound::mqtt::publish_once(
                &config.mqtt,
                topic,
                payload.clone().into_bytes(),
                timeout,
            )
            .await
            {
                Ok(()) => StepResult {
                    outcome: StepOutcome::Ok,
                    exit_code: None,
                    http_status: None,
                    output: String::new(),
                    detail: format!("published on {topic}, acknowledged by the broker"),
                },
                Err(e) => failed(&format!("not published on {topic}: {e}")),
            }
        }
        StepPlan::WaitClear { .. } => failed("a wait is the planner's, not the runner's"),
    }
}

/// SETs `oid` on `device` with its credential, checked against `[actions] allow-oids` as it
/// is now, and reads it back: the step succeeds only if the agent holds the value.
async fn snmp_set(
    config: &Config,
    device: &str,
    oid: &str,
    value: &SetValue,
    timeout: Duration,
) -> StepResult {
    let under = |allowed: &String| {
        let a = allowed.trim_start_matches('.');
        oid.trim_start_matches('.')
            .strip_prefix(a)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
    };
    if !config.actions.allow_oids.iter().any(under) {
        return failed(&format!("not run: {oid} is not under [actions] allow-oids"));
    }
    let Some(d) = config.devices.iter().find(|d| d.name == device) else {
        return failed(&format!("not run: no device {device} in the config"));
    };
    let Some(credential) = d
        .credentials
        .as_ref()
        .and_then(|c| config.snmp.credentials.get(c))
    else {
        return failed(&format!("not run: {device} has no SNMP credentials"));
    };
    let Some(arcs) = crate::config::profile::arcs(oid) else {
        return failed(&format!("not run: `{oid}` is not a numeric OID"));
    };
    let addr = std::net::SocketAddr::new(d.address, d.snmp_port);
    match crate::ingest::snmp::set_and_read_back(addr, credential, &arcs, value, timeout).await {
        Ok((read, true)) => StepResult {
            outcome: StepOutcome::Ok,
            exit_code: None,
            http_status: None,
            output: format!("{oid} = {read}"),
            detail: format!("set {oid} = {value} on {device}; read back {read}"),
        },
        Ok((read, false)) => StepResult {
            outcome: StepOutcome::Failed,
            exit_code: None,
            http_status: None,
            output: format!("{oid} = {read}"),
            detail: format!("set {oid} = {value} on {device}, but it reads back {read}"),
        },
        Err(e) => failed(&format!("SET {oid} on {device}: {e}")),
    }
}

fn failed(detail: &str) -> StepResult {
    StepResult {
        outcome: StepOutcome::Failed,
        exit_code: None,
        http_status: None,
        output: String::new(),
        detail: detail.to_owned(),
    }
}

/// Runs `argv` with only `env`, no shell and no stdin; keeps the first `max` bytes of stdout
/// and stderr together; kills it after `timeout`.
async fn exec(
    argv: &[String],
    env: &[(String, String)],
    timeout: Duration,
    max: usize,
) -> StepResult {
    let Some((program, args)) = argv.split_first() else {
        return failed("nothing to run");
    };
    let mut child = match tokio::process::Command::new(program)
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return failed(&format!("cannot start {program}: {e}")),
    };
    let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
    let mut output = Vec::new();
    // Each stream is kept to `max` bytes and the rest read and dropped, so a chatty program
    // neither fills the daemon's memory nor blocks on a full pipe.
    let limit = max as u64 + 1;
    let run = async {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let read_out = async {
            if let Some(o) = out.as_mut() {
                let _ = o.take(limit).read_to_end(&mut a).await;
                let _ = tokio::io::copy(o, &mut tokio::io::sink()).await;
            }
        };
        let read_err = async {
            if let Some(e) = err.as_mut() {
                let _ = e.take(limit).read_to_end(&mut b).await;
                let _ = tokio::io::copy(e, &mut tokio::io::sink()).await;
            }
        };
        tokio::join!(read_out, read_err);
        let status = child.wait().await;
        (status, a, b)
    };
    match tokio::time::timeout(timeout, run).await {
        Ok((status, a, b)) => {
            output.extend_from_slice(&a);
            output.extend_from_slice(&b);
            let output = excerpt(&output, max);
            match status {
                Ok(s) if s.success() => StepResult {
                    outcome: StepOutcome::Ok,
                    exit_code: s.code(),
                    http_status: None,
                    output,
                    detail: "exit 0".to_owned(),
                },
                Ok(s) => StepResult {
                    outcome: StepOutcome::Failed,
                    exit_code: s.code(),
                    http_status: None,
                    output,
                    detail: match s.code() {
                        Some(c) => format!("exit {c}"),
                        None => "killed by a signal".to_owned(),
                    },
                },
                Err(e) => failed(&format!("cannot wait for {program}: {e}")),
            }
        }
        Err(_) => {
            // `run` (which held the child) is dropped: kill_on_drop ends the process.
            StepResult {
                outcome: StepOutcome::TimedOut,
                exit_code: None,
                http_status: None,
                output: String::new(),
                detail: format!("killed after {}", humantime::format_duration(timeout)),
            }
        }
    }
}

/// POSTs `body`, retrying (1 s, 2 s, 4 s, ...) on a failure to connect or a status that is
/// not 2xx.
async fn webhook(
    url: &str,
    body: &str,
    token: Option<crate::config::Secret>,
    timeout: Duration,
    retries: u32,
    max: usize,
) -> StepResult {
    let mut last = failed("not tried");
    for attempt in 0..=retries {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(1 << (attempt - 1).min(6))).await;
        }
        let (url, body, token) = (url.to_owned(), body.to_owned(), token.clone());
        let answer =
            tokio::task::spawn_blocking(move || post(&url, &body, token.as_ref(), timeout)).await;
        let (status, text) = match answer {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => {
                last = failed(&format!("attempt {}: {e}", attempt + 1));
                continue;
            }
            Err(e) => {
                last = failed(&format!("attempt {}: {e}", attempt + 1));
                continue;
            }
        };
        let ok = (200..300).contains(&status);
        last = StepResult {
            outcome: if ok {
                StepOutcome::Ok
            } else {
                StepOutcome::Failed
            },
            exit_code: None,
            http_status: Some(status),
            output: excerpt(text.as_bytes(), max),
            detail: format!(
                "HTTP {status} on attempt {} of {}",
                attempt + 1,
                retries + 1
            ),
        };
        if ok {
            break;
        }
    }
    last
}

fn post(
    url: &str,
    body: &str,
    token: Option<&crate::config::Secret>,
    timeout: Duration,
) -> Result<(u16, String), ureq::Error> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into();
    let mut request = agent
        .post(url)
        .header("content-type", "application/json")
        .header("user-agent", concat!("noctua/", env!("CARGO_PKG_VERSION")));
    if let Some(t) = token {
        request = request.header("authorization", &format!("Bearer {}", t.expose()));
    }
    let mut answer = request.send(body)?;
    let status = answer.status().as_u16();
    let text = answer
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_string()
        .unwrap_or_default();
    Ok((status, text))
}

/// The first `max` bytes of `bytes`, as printable text.
fn excerpt(bytes: &[u8], max: usize) -> String {
    let cut = &bytes[..bytes.len().min(max)];
    let text = String::from_utf8_lossy(cut);
    // One line for the audit: line breaks inside show as `\n`, the last one goes.
    let mut out = printable(text.trim_end()).into_owned();
    if bytes.len() > max {
        out.push_str(" …");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_chatty_program_runs_to_its_end_and_keeps_a_bounded_excerpt() {
        let argv: Vec<String> = [
            "/bin/sh",
            "-c",
            "head -c 5000000 /dev/zero | tr '\\0' x; echo done >&2",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let r = exec(&argv, &[], Duration::from_secs(30), 100).await;
        assert_eq!(r.outcome, StepOutcome::Ok, "{r:?}");
        // Its 5 MB drained (else it would block on the pipe and time out), 100 bytes kept.
        assert!(r.output.starts_with(&"x".repeat(100)), "{}", r.output);
        assert!(r.output.len() < 120, "{} bytes kept", r.output.len());
    }

    #[tokio::test]
    async fn a_program_past_its_timeout_is_killed_and_says_so() {
        let argv: Vec<String> = ["/bin/sh", "-c", "sleep 30"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let r = exec(&argv, &[], Duration::from_millis(200), 100).await;
        assert_eq!(r.outcome, StepOutcome::TimedOut, "{r:?}");
        assert!(r.detail.starts_with("killed after"), "{r:?}");
    }

    #[tokio::test]
    async fn a_program_that_cannot_start_fails_with_why() {
        let argv = vec!["/nonexistent/tool".to_owned()];
        let r = exec(&argv, &[], Duration::from_secs(5), 100).await;
        assert_eq!(r.outcome, StepOutcome::Failed);
        assert!(
            r.detail.starts_with("cannot start /nonexistent/tool"),
            "{r:?}"
        );
    }
}
