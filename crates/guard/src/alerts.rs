//! Alert state: which alerts are open, when they opened, and the open and resolve events.
//!
//! Rules (in `lib.rs`) report a [`Check`] per alert they evaluate: `Fire` when the value is
//! past the alert's threshold, `Clear` when it is back past the (lower) resolve threshold,
//! `Hold` in between. The gap between the two thresholds is the hysteresis: a value that
//! hovers at a threshold opens one alert, not one per sample.

use std::collections::{BTreeMap, VecDeque};

/// How urgent an alert is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// An alert, open or resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    /// `kind:subject[:detail]`, unique among open alerts.
    pub id: String,
    pub kind: &'static str,
    /// The namespace, `global`, or the part of the server (`aof`, `rdb`).
    pub subject: String,
    pub severity: Severity,
    /// The measured value and the threshold it crossed, in the unit the message uses.
    pub value: f64,
    pub threshold: f64,
    pub message: String,
    pub opened_ms: i64,
    pub resolved_ms: Option<i64>,
}

/// Where a value stands against an alert's thresholds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Fire,
    Hold,
    Clear,
}

/// One rule's verdict on one alert.
#[derive(Clone, Debug)]
pub struct Check {
    pub id: String,
    pub kind: &'static str,
    pub subject: String,
    pub severity: Severity,
    pub state: State,
    pub value: f64,
    pub threshold: f64,
    pub message: String,
}

/// An alert opened or resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// `open` or `resolve`.
    pub what: &'static str,
    pub at_ms: i64,
    pub alert: Alert,
}

/// How many resolved alerts and events are remembered.
pub const HISTORY: usize = 100;

/// Open alerts and recent history.
#[derive(Debug, Default)]
pub struct Alerts {
    open: BTreeMap<String, Alert>,
    events: VecDeque<Event>,
    /// Alerts opened since start.
    pub opened_total: u64,
}

impl Alerts {
    /// Applies one round of checks; returns the events it caused. Open alerts that no check
    /// mentions stay as they are.
    pub fn update(&mut self, now_ms: i64, checks: Vec<Check>) -> Vec<Event> {
        let mut events = Vec::new();
        for c in checks {
            match (self.open.get_mut(&c.id), c.state) {
                (None, State::Fire) => {
                    let alert = Alert {
                        id: c.id.clone(),
                        kind: c.kind,
                        subject: c.subject,
                        severity: c.severity,
                        value: c.value,
                        threshold: c.threshold,
                        message: c.message,
                        opened_ms: now_ms,
                        resolved_ms: None,
                    };
                    self.opened_total += 1;
                    events.push(Event { what: "open", at_ms: now_ms, alert: alert.clone() });
                    self.open.insert(c.id, alert);
                }
                (Some(_), State::Clear) => {
                    if let Some(mut alert) = self.open.remove(&c.id) {
                        alert.value = c.value;
                        alert.message = c.message;
                        alert.resolved_ms = Some(now_ms);
                        events.push(Event { what: "resolve", at_ms: now_ms, alert });
                    }
                }
                (Some(a), _) => {
                    // a check with no message only keeps the alert open as it is
                    if !c.message.is_empty() {
                        a.value = c.value;
                        a.message = c.message;
                    }
                    a.severity = a.severity.max(c.severity);
                }
                (None, _) => {}
            }
        }
        self.remember(&events);
        events
    }

    /// Resolves the open alerts whose subject `keep` rejects (a namespace that was removed).
    pub fn resolve_where(&mut self, now_ms: i64, keep: impl Fn(&Alert) -> bool) -> Vec<Event> {
        let gone: Vec<String> = self.open.values().filter(|a| !keep(a)).map(|a| a.id.clone()).collect();
        let mut events = Vec::new();
        for id in gone {
            if let Some(mut alert) = self.open.remove(&id) {
                alert.resolved_ms = Some(now_ms);
                alert.message = format!("{} (no longer monitored)", alert.message);
                events.push(Event { what: "resolve", at_ms: now_ms, alert });
            }
        }
        self.remember(&events);
        events
    }

    fn remember(&mut self, events: &[Event]) {
        for e in events {
            if self.events.len() == HISTORY {
                self.events.pop_front();
            }
            self.events.push_back(e.clone());
        }
    }

    pub fn is_open(&self, id: &str) -> bool {
        self.open.contains_key(id)
    }

    /// Open alerts, most severe first, then oldest first.
    pub fn open(&self) -> Vec<&Alert> {
        let mut v: Vec<&Alert> = self.open.values().collect();
        v.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.opened_ms.cmp(&b.opened_ms)).then(a.id.cmp(&b.id)));
        v
    }

    /// Recent events, newest last.
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.events.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(state: State, value: f64) -> Check {
        Check {
            id: "memory:global:90".into(),
            kind: "memory",
            subject: "global".into(),
            severity: Severity::Critical,
            state,
            value,
            threshold: 90.0,
            message: format!("at {value}%"),
        }
    }

    #[test]
    fn hysteresis_opens_once_and_resolves_once() {
        let mut a = Alerts::default();
        assert!(a.update(0, vec![check(State::Hold, 88.0)]).is_empty(), "hold never opens");
        let e = a.update(1, vec![check(State::Fire, 91.0)]);
        assert_eq!((e.len(), e[0].what), (1, "open"));
        // hovering around the threshold does not open it again
        for (t, v) in [(2, 89.0), (3, 92.0), (4, 87.0)] {
            let s = if v >= 90.0 { State::Fire } else { State::Hold };
            assert!(a.update(t, vec![check(s, v)]).is_empty());
        }
        assert_eq!(a.open()[0].message, "at 87%", "the open alert shows the latest value");
        let e = a.update(5, vec![check(State::Clear, 80.0)]);
        assert_eq!((e[0].what, e[0].alert.opened_ms, e[0].alert.resolved_ms), ("resolve", 1, Some(5)));
        assert!(a.open().is_empty());
        assert_eq!(a.events().count(), 2);
        assert_eq!(a.opened_total, 1);
    }

    #[test]
    fn alerts_of_removed_subjects_resolve() {
        let mut a = Alerts::default();
        a.update(0, vec![check(State::Fire, 95.0)]);
        let e = a.resolve_where(1, |al| al.subject != "global");
        assert_eq!(e.len(), 1);
        assert!(!a.is_open("memory:global:90"));
    }
}
