//! Which rules an alarm's transition matches, and the steps they plan for it, rendered from
//! the rule's templates.

use std::borrow::Cow;

use crate::config::{ActionRule, Field, Filtered, Piece, StepConfig, Template, Topology};
use crate::model::{ActionId, StepPlan, Transition, Trigger, printable};

/// Whether `rule` acts on `t` (a `trigger` transition), with devices' places from `topology`.
pub fn matches(rule: &ActionRule, trigger: Trigger, t: &Transition, topology: &Topology) -> bool {
    let a = &t.event.alarm;
    // A clear has no severity of its own: the fault's worst is what it was.
    let severity = if trigger == Trigger::Cleared {
        t.fault.peak_severity
    } else {
        a.perceived_severity
    };
    rule.on.contains(&trigger)
        && rule.takes(
            &Filtered {
                severity,
                category: a.category,
                device: &a.device,
                role: topology.role(&a.device),
                site: topology.site(&a.device),
                object: &a.object,
                condition: &a.condition,
                services: &a.impact.services,
            },
            topology,
        )
}

/// What templates are filled from.
pub struct Context<'a> {
    /// The transition.
    pub transition: &'a Transition,
    /// Its trigger.
    pub trigger: Trigger,
    /// The action's id.
    pub action: ActionId,
    /// The rule's name.
    pub rule: &'a str,
    /// Devices' places.
    pub topology: &'a Topology,
}

impl Context<'_> {
    fn field(&self, f: Field) -> Result<Cow<'_, str>, String> {
        let t = self.transition;
        let a = &t.event.alarm;
        Ok(match f {
            Field::Device => Cow::Borrowed(a.device.as_str()),
            Field::Object => Cow::Borrowed(a.object.as_str()),
            Field::IfIndex => Cow::Borrowed(if_index(&a.object).ok_or_else(|| {
                format!(
                    "the alarm's object `{}` is not an interface (ifIndex=N)",
                    a.object
                )
            })?),
            Field::Condition => Cow::Borrowed(a.condition.as_str()),
            Field::Severity => Cow::Borrowed(a.perceived_severity.name()),
            Field::Category => Cow::Borrowed(a.category.name()),
            Field::AlarmId => Cow::Owned(a.alarm_id.to_string()),
            Field::FaultId => Cow::Owned(t.fault.id.to_string()),
            Field::ActionId => Cow::Owned(self.action.to_string()),
            Field::Rule => Cow::Borrowed(self.rule),
            Field::Trigger => Cow::Borrowed(self.trigger.name()),
            Field::Site => Cow::Borrowed(self.topology.site(&a.device).unwrap_or("")),
            Field::Role => Cow::Borrowed(self.topology.role(&a.device).map_or("", |r| r.name())),
            Field::Text => printable(&a.additional_text),
        })
    }

    /// `template` with its fields filled in.
    pub fn render(&self, template: &Template) -> Result<String, String> {
        let mut out = String::new();
        for piece in &template.0 {
            match piece {
                Piece::Text(s) => out.push_str(s),
                Piece::Field(f) => out.push_str(&self.field(*f)?),
            }
        }
        Ok(out)
    }

    /// The step as it will run.
    pub fn plan(&self, step: &StepConfig) -> Result<StepPlan, String> {
        let timeout_ms = millis(step.timeout);
        if let Some(argv) = &step.exec {
            return Ok(StepPlan::Exec {
                argv: argv
                    .iter()
                    .map(|a| self.render(a))
                    .collect::<Result<_, _>>()?,
                env: step.secret_env.keys().cloned().collect(),
                timeout_ms,
            });
        }
        if let Some(url) = &step.webhook {
            return Ok(StepPlan::Webhook {
                url: self.render(url)?,
                body: self.body(),
                timeout_ms,
                retries: step.retries,
            });
        }
        if let Some(oid) = &step.snmp_set {
            let oid = self.render(oid)?;
            if crate::config::profile::arcs(&oid).is_none() {
                return Err(format!("`{oid}` is not a numeric OID"));
            }
            return Ok(StepPlan::SnmpSet {
                oid,
                value: step.value.clone().ok_or("`snmp-set` without a value")?,
                timeout_ms,
            });
        }
        if let Some(topic) = &step.notify {
            // A field's value may not add topic levels or wildcards.
            let topic = self.render(topic)?.replace(['+', '#'], "_");
            let text = match &step.message {
                Some(m) => self.render(m)?,
                None => self.summary(),
            };
            return Ok(StepPlan::Notify {
                topic,
                payload: self.body_with(&text),
                timeout_ms,
            });
        }
        let within = step.wait_clear.unwrap_or_default();
        Ok(StepPlan::WaitClear {
            within_ms: millis(within),
        })
    }

    /// What a webhook posts: the action, and the alarm as TS 28.532 JSON.
    fn body(&self) -> String {
        self.body_json().to_string()
    }

    /// What a notify publishes: the webhook's body with the text.
    fn body_with(&self, text: &str) -> String {
        let mut v = self.body_json();
        v["text"] = text.into();
        v.to_string()
    }

    fn body_json(&self) -> serde_json::Value {
        serde_json::json!({
            "actionId": self.action.0,
            "rule": self.rule,
            "trigger": self.trigger.name(),
            "faultId": self.transition.fault.id.0,
            "alarm": &self.transition.event.alarm,
        })
    }

    /// `bounce-port: link_down on r1 ifIndex=3 (major) raised`.
    fn summary(&self) -> String {
        let a = &self.transition.event.alarm;
        format!(
            "{}: {} on {} {} ({}) {}",
            self.rule,
            a.condition,
            a.device,
            a.object,
            a.perceived_severity.name(),
            self.trigger.name()
        )
    }
}

/// `3` of `ifIndex=3`.
fn if_index(object: &str) -> Option<&str> {
    object
        .strip_prefix("ifIndex=")
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
