//! One agent's session: made on demand (v2c, for one poll; or v3 with engine discovery, then
//! kept), every request wrapped in a timeout and retried, dropped after any failure.

use std::sync::Arc;
use std::time::Duration;

use std::net::SocketAddr;

use snmp2::{AsyncSession, Oid, Value};

use super::counters::Reading;
use crate::config::{Credential, SnmpConfig, SnmpVersion};
use crate::model::SetValue;
use crate::telemetry::Metrics;

use super::budget::Budget;
use super::if_mib::{Inventory, poll};
use super::{Filter, PollError, Target};

/// Polls one agent; its session is made on demand and dropped after any failure.
pub struct Poller {
    pub(super) target: Target,
    session: Option<AsyncSession>,
    timeout: Duration,
    retries: u32,
    req_id: i32,
    pub(super) metrics: Arc<Metrics>,
    /// What the last discovery learned of the interface table.
    pub(super) inventory: Inventory,
    /// `max-values-per-second`, if set.
    budget: Option<Budget>,
}

/// What one poll brought back.
#[derive(Debug)]
pub struct Polled {
    /// The reading, for [`Counters::update`].
    pub reading: Reading,
    /// Round trip of the sysUpTime request: management-plane latency.
    pub rtt: Duration,
    /// Values (varbinds) fetched.
    pub values: u64,
}

impl Poller {
    /// A poller for `target` with `[snmp]`'s timeout and retries.
    pub fn new(target: Target, snmp: &SnmpConfig, metrics: Arc<Metrics>) -> Self {
        Self {
            budget: target.plan.max_values_per_second.map(Budget::new),
            target,
            session: None,
            timeout: snmp.timeout,
            retries: snmp.retries,
            req_id: 1,
            metrics,
            inventory: Inventory::default(),
        }
    }

    /// One poll: sysUpTime and ifTableLastChange, the interface table (all of it at
    /// discovery, else its moving columns), then the profile's extra OIDs.
    pub async fn poll(&mut self, filter: &Filter) -> Result<Polled, PollError> {
        let polled = poll(self, filter).await;
        // A session holds two 64 KB buffers: over 10,000 devices, more than the rest of the
        // daemon. A v2c session costs a socket to make again, so it lives for one poll; a v3
        // one is kept, as making it again costs the agent an engine discovery.
        if self.target.credential.version == SnmpVersion::V2c {
            self.session = None;
        }
        polled
    }

    async fn open(&mut self) -> Result<&mut AsyncSession, PollError> {
        if self.session.is_none() {
            self.metrics.snmp_sessions.inc();
            self.req_id = self.req_id.wrapping_add(1_000);
            let session = open_session(
                self.target.addr,
                &self.target.credential,
                self.req_id,
                self.timeout,
            )
            .await?;
            self.session = Some(session);
        }
        // Present: made just above if it was missing.
        self.session
            .as_mut()
            .ok_or_else(|| PollError::Session("no session".to_owned()))
    }

    /// Runs one request with timeout and retries; `read` sees the reply while it is borrowed.
    pub(super) async fn request<T>(
        &mut self,
        oids: &[Oid<'static>],
        bulk: Option<u32>,
        mut read: impl FnMut(snmp2::Pdu<'_>) -> Result<T, PollError>,
    ) -> Result<T, PollError> {
        let mut last = PollError::Timeout(self.timeout);
        for attempt in 0..=self.retries {
            if attempt > 0 {
                // Back off a little: 100 ms, 200 ms, 400 ms ... capped at one timeout.
                let wait = Duration::from_millis(100 << (attempt - 1).min(6));
                tokio::time::sleep(wait.min(self.timeout)).await;
            }
            self.pace(oids.len() * bulk.map_or(1, |reps| reps as usize))
                .await;
            let timeout = self.timeout;
            let session = match self.open().await {
                Ok(s) => s,
                Err(e) => {
                    last = e;
                    continue;
                }
            };
            let refs: Vec<&Oid<'_>> = oids.iter().collect();
            let reply = match bulk {
                Some(reps) => tokio::time::timeout(timeout, session.getbulk(&refs, 0, reps)).await,
                None => tokio::time::timeout(timeout, session.get_many(&refs)).await,
            };
            let result = match reply {
                Err(_) => Err(PollError::Timeout(timeout)),
                Ok(Err(e @ (snmp2::Error::Send | snmp2::Error::Receive))) => {
                    Err(PollError::Network(e.to_string()))
                }
                Ok(Err(e)) => Err(PollError::Agent(format!("{e:?}"))),
                Ok(Ok(pdu)) if pdu.error_status != 0 => Err(PollError::Agent(format!(
                    "error-status {} at index {}",
                    pdu.error_status, pdu.error_index
                ))),
                Ok(Ok(pdu)) => read(pdu),
            };
            match result {
                Ok(v) => return Ok(v),
                Err(e) => {
                    // A late reply would leave the session off by one: start over.
                    self.session = None;
                    last = e;
                }
            }
        }
        Err(last)
    }
}

impl Poller {
    /// Waits until the device's budget allows a request of `values`, counting the wait.
    async fn pace(&mut self, values: usize) {
        let Some(budget) = &mut self.budget else {
            return;
        };
        let wait = budget.admit(values, std::time::Instant::now());
        if !wait.is_zero() {
            let device = [self.target.name.as_str()];
            self.metrics
                .snmp_budget_waits
                .with_label_values(&device)
                .inc();
            self.metrics
                .snmp_budget_delay
                .with_label_values(&device)
                .inc_by(wait.as_secs_f64());
            tokio::time::sleep(wait).await;
        }
    }
}

/// SETs one object on an agent and reads it back (an action step isolating or restoring an
/// interface): v2c with the credential's write community, v3 as its user. One attempt, no
/// retry: a SET that timed out may have been applied, and the read back says whether it was.
/// Returns the value read back, and whether it is the one set.
pub async fn set_and_read_back(
    addr: SocketAddr,
    credential: &Credential,
    arcs: &[u64],
    value: &SetValue,
    timeout: Duration,
) -> Result<(String, bool), PollError> {
    let mut c = credential.clone();
    if c.version == SnmpVersion::V2c {
        c.community = Some(c.write_community.clone().ok_or_else(|| {
            PollError::Session("the device's v2c credential has no write-community".to_owned())
        })?);
    }
    let oid = Oid::from(arcs).map_err(|_| PollError::Session("invalid OID".to_owned()))?;
    let given = match value {
        SetValue::Integer(n) => Value::Integer(*n),
        SetValue::Text(t) => Value::OctetString(t.as_bytes()),
    };
    let mut session = open_session(addr, &c, 7, timeout).await?;
    let answer =
        |r: Result<Result<snmp2::Pdu<'_>, snmp2::Error>, tokio::time::error::Elapsed>| match r {
            Err(_) => Err(PollError::Timeout(timeout)),
            Ok(Err(e)) => Err(PollError::Agent(format!("{e:?}"))),
            Ok(Ok(pdu)) if pdu.error_status != 0 => Err(PollError::Agent(format!(
                "error-status {} ({})",
                pdu.error_status,
                error_status_name(pdu.error_status)
            ))),
            Ok(Ok(mut pdu)) => Ok(pdu
                .varbinds
                .next()
                .map(|(_, v)| match v {
                    Value::Integer(n) => (n.to_string(), *value == SetValue::Integer(n)),
                    Value::OctetString(b) => {
                        let text = String::from_utf8_lossy(b).into_owned();
                        let same = *value == SetValue::Text(text.clone());
                        (format!("{text:?}"), same)
                    }
                    other => (format!("{other:?}"), false),
                })
                .unwrap_or_else(|| ("nothing".to_owned(), false))),
        };
    answer(tokio::time::timeout(timeout, session.set(&[(&oid, given)])).await)?;
    answer(tokio::time::timeout(timeout, session.get(&oid)).await)
}

/// RFC 3416's names for the error statuses a SET meets.
fn error_status_name(status: u32) -> &'static str {
    match status {
        2 => "noSuchName",
        3 => "badValue",
        4 => "readOnly",
        6 => "noAccess",
        7 => "wrongType",
        10 => "wrongValue",
        16 => "authorizationError",
        17 => "notWritable",
        _ => "genErr",
    }
}

async fn open_session(
    addr: SocketAddr,
    c: &Credential,
    req_id: i32,
    timeout: Duration,
) -> Result<AsyncSession, PollError> {
    let err = |e: std::io::Error| PollError::Session(e.to_string());
    match c.version {
        SnmpVersion::V2c => {
            let community = c.community.as_ref().map_or("", |s| s.expose());
            AsyncSession::new_v2c(addr, community.as_bytes(), req_id)
                .await
                .map_err(err)
        }
        SnmpVersion::V3 => {
            let security = crate::ingest::usm::usm_security(c);
            let mut session = AsyncSession::new_v3(addr, req_id, security)
                .await
                .map_err(err)?;
            // Engine discovery is a round trip too.
            match tokio::time::timeout(timeout, session.init()).await {
                Err(_) => Err(PollError::Timeout(timeout)),
                Ok(Err(e)) => Err(PollError::Session(format!("v3 engine discovery: {e:?}"))),
                Ok(Ok(())) => Ok(session),
            }
        }
    }
}
