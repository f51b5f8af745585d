//! The EC2 instance state machine: AWS's states and codes, and which transitions each API
//! call and each host event may make. Pure, so the core and its tests share one truth.

use std::fmt;
use std::str::FromStr;

use crate::enums::{parse_wire, UnknownValue, WireEnum};

/// An instance state, with AWS's code (the low byte of `InstanceState.Code`). Its text
/// (`InstanceStateName`) is also what the store keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum InstanceState {
    /// Where every instance starts.
    #[default]
    Pending,
    Running,
    ShuttingDown,
    Terminated,
    Stopping,
    Stopped,
}

impl InstanceState {
    pub const ALL: [InstanceState; 6] = [
        InstanceState::Pending,
        InstanceState::Running,
        InstanceState::ShuttingDown,
        InstanceState::Terminated,
        InstanceState::Stopping,
        InstanceState::Stopped,
    ];

    pub fn code(self) -> u16 {
        match self {
            InstanceState::Pending => 0,
            InstanceState::Running => 16,
            InstanceState::ShuttingDown => 32,
            InstanceState::Terminated => 48,
            InstanceState::Stopping => 64,
            InstanceState::Stopped => 80,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Pending => "pending",
            InstanceState::Running => "running",
            InstanceState::ShuttingDown => "shutting-down",
            InstanceState::Terminated => "terminated",
            InstanceState::Stopping => "stopping",
            InstanceState::Stopped => "stopped",
        }
    }

    pub fn parse(s: &str) -> Option<InstanceState> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Where `StartInstances` may take an instance from this state: `None` means the call
    /// is refused with `IncorrectInstanceState`; `Some(self)` means nothing to do.
    pub fn on_start(self) -> Option<InstanceState> {
        match self {
            InstanceState::Stopped => Some(InstanceState::Pending),
            InstanceState::Pending | InstanceState::Running => Some(self),
            InstanceState::ShuttingDown | InstanceState::Terminated | InstanceState::Stopping => {
                None
            }
        }
    }

    /// Where `StopInstances` takes it.
    pub fn on_stop(self) -> Option<InstanceState> {
        match self {
            InstanceState::Pending | InstanceState::Running => Some(InstanceState::Stopping),
            InstanceState::Stopping | InstanceState::Stopped => Some(self),
            InstanceState::ShuttingDown | InstanceState::Terminated => None,
        }
    }

    /// Where `TerminateInstances` takes it (every state may be terminated; terminating twice
    /// is a no-op).
    pub fn on_terminate(self) -> InstanceState {
        match self {
            InstanceState::Terminated => InstanceState::Terminated,
            InstanceState::Pending
            | InstanceState::Running
            | InstanceState::ShuttingDown
            | InstanceState::Stopping
            | InstanceState::Stopped => InstanceState::ShuttingDown,
        }
    }

    /// `RebootInstances` is accepted for these states (AWS queues it for pending ones).
    pub fn can_reboot(self) -> bool {
        matches!(self, InstanceState::Running | InstanceState::Pending)
    }

    /// Whether the instance should have a running guest.
    pub fn wants_guest(self) -> bool {
        matches!(self, InstanceState::Pending | InstanceState::Running)
    }

    /// Whether an instance in this state still bills for its root volume and shows as
    /// existing.
    pub fn is_gone(self) -> bool {
        self == InstanceState::Terminated
    }
}

impl WireEnum for InstanceState {
    const WHAT: &'static str = "instance state";
    const ALL: &'static [InstanceState] = &InstanceState::ALL;

    fn as_str(self) -> &'static str {
        InstanceState::as_str(self)
    }
}

impl FromStr for InstanceState {
    type Err = UnknownValue;

    fn from_str(text: &str) -> Result<InstanceState, UnknownValue> {
        parse_wire(text)
    }
}

impl fmt::Display for InstanceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::InstanceState::*;
    use super::*;

    #[test]
    fn codes_are_aws() {
        let codes: Vec<u16> = InstanceState::ALL.iter().map(|s| s.code()).collect();
        assert_eq!(codes, [0, 16, 32, 48, 64, 80]);
        for s in InstanceState::ALL {
            assert_eq!(InstanceState::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn transitions() {
        assert_eq!(Stopped.on_start(), Some(Pending));
        assert_eq!(Running.on_start(), Some(Running));
        assert_eq!(Stopping.on_start(), None);
        assert_eq!(Terminated.on_start(), None);
        assert_eq!(Running.on_stop(), Some(Stopping));
        assert_eq!(Stopped.on_stop(), Some(Stopped));
        assert_eq!(ShuttingDown.on_stop(), None);
        assert_eq!(Stopped.on_terminate(), ShuttingDown);
        assert_eq!(Terminated.on_terminate(), Terminated);
        assert!(Running.can_reboot() && !Stopped.can_reboot());
    }
}
