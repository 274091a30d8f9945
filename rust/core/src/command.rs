//! Commands as the code issues them, and the identity they are matched on during replay.

use crate::event::EventBody;

/// What a command is compared on when it is matched against a recorded command event: its kind
/// plus, for some kinds, a name or a target id. Payloads and options are never compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Identity<'a> {
    ScheduleActivity(&'a str),
    CancelActivity(u64),
    StartTimer,
    CancelTimer(u64),
    SideEffect,
    Patched(&'a str),
    StartChild(&'a str),
    CancelChild(u64),
    SignalExternal(&'a str),
    CancelExternal,
    Complete,
    Fail,
    Cancel,
    ContinueAsNew,
}

/// The event is not a command event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NotACommand;

impl<'a> TryFrom<&'a EventBody> for Identity<'a> {
    type Error = NotACommand;

    /// The command that produced a recorded command event.
    fn try_from(body: &'a EventBody) -> Result<Self, NotACommand> {
        use EventBody as B;
        Ok(match body {
            B::ActivityScheduled { name, .. } => Identity::ScheduleActivity(name),
            B::ActivityCancelRequested { id } => Identity::CancelActivity(*id),
            B::TimerStarted { .. } => Identity::StartTimer,
            B::TimerCanceled { id } => Identity::CancelTimer(*id),
            B::SideEffectRecorded { .. } => Identity::SideEffect,
            B::MarkerRecorded { name, .. } => Identity::Patched(name),
            B::ChildScheduled { name, .. } => Identity::StartChild(name),
            B::ChildCancelRequested { id } => Identity::CancelChild(*id),
            B::SignalExternalSent { name, .. } => Identity::SignalExternal(name),
            B::ExternalCancelRequested { .. } => Identity::CancelExternal,
            B::WorkflowCompleted { .. } => Identity::Complete,
            B::WorkflowFailed { .. } => Identity::Fail,
            B::WorkflowCanceled => Identity::Cancel,
            B::WorkflowContinuedAsNew { .. } => Identity::ContinueAsNew,
            _ => return Err(NotACommand),
        })
    }
}

impl Identity<'_> {
    /// How the command is named in error messages (`schedule_activity 'charge'`).
    pub(crate) fn describe(&self) -> String {
        match self {
            Identity::ScheduleActivity(name) => format!("schedule_activity '{name}'"),
            Identity::CancelActivity(id) => format!("cancel_activity for command {id}"),
            Identity::StartTimer => "start_timer".to_owned(),
            Identity::CancelTimer(id) => format!("cancel_timer for command {id}"),
            Identity::SideEffect => "side_effect".to_owned(),
            Identity::Patched(change) => format!("patched '{change}'"),
            Identity::StartChild(name) => format!("start_child '{name}'"),
            Identity::CancelChild(id) => format!("cancel_child for command {id}"),
            Identity::SignalExternal(name) => format!("signal_external '{name}'"),
            Identity::CancelExternal => "cancel_external".to_owned(),
            Identity::Complete => "complete".to_owned(),
            Identity::Fail => "fail".to_owned(),
            Identity::Cancel => "cancel".to_owned(),
            Identity::ContinueAsNew => "continue_as_new".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::Payload;

    #[test]
    fn identity_ignores_payloads_but_not_names() {
        let p = |t: &str| Payload::from_json(t.as_bytes()).unwrap();
        let a = EventBody::ActivityScheduled {
            id: 1,
            name: "charge".into(),
            input: p("1"),
            options: p("{}"),
        };
        let b = EventBody::ActivityScheduled {
            id: 1,
            name: "charge".into(),
            input: p("2"),
            options: p("[]"),
        };
        assert_eq!(Identity::try_from(&a), Identity::try_from(&b));
        assert_eq!(
            Identity::try_from(&a),
            Ok(Identity::ScheduleActivity("charge"))
        );
        assert_ne!(
            Identity::try_from(&a),
            Ok(Identity::ScheduleActivity("refund"))
        );
        assert_eq!(
            Identity::try_from(&EventBody::TimerFired { id: 1 }),
            Err(NotACommand)
        );
    }
}
