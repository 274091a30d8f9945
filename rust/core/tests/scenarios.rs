//! Scenario tests: each runs a small workflow incrementally and as a full replay (see
//! `support::scenario`) against a history written with the builder; the doc comment of each
//! test numbers the events of that history.

mod support;

use ostinato_core::{Activation, Error, EventKind, Reducer, Result, TaskKind};
use support::*;

fn job_kinds(a: &Activation) -> Vec<EventKind> {
    a.jobs.iter().map(|j| j.kind).collect()
}

/// ```text
///  1 task_started
///  2 workflow_started
///  3 activity_scheduled id=1 'charge'
///  4 task_started
///  5 activity_completed id=1
///  6 workflow_completed
/// ```
#[test]
fn one_activity() {
    let mut h = HistoryBuilder::new();
    h.task(10).workflow_started("orders", "[\"o-1\"]");
    h.activity_scheduled("charge", "[\"o-1\",100]");
    h.task(20).activity_completed(1, "\"receipt\"");
    h.workflow_completed("\"receipt\"");
    let make = || {
        |r: &mut Reducer, a: &Activation, log: &mut Vec<String>| -> Result<()> {
            match job_kinds(a).as_slice() {
                [EventKind::WorkflowStarted] => {
                    let id = r.schedule_activity("charge", b"[\"o-1\",100]", b"{}")?;
                    log.push(format!("scheduled {id}"));
                }
                [EventKind::ActivityCompleted] => {
                    let result = a.jobs[0].payload.clone().unwrap();
                    r.complete(result.as_bytes())?;
                }
                other => panic!("unexpected jobs {other:?}"),
            }
            Ok(())
        }
    };
    let (inc, _) = scenario(make, &h);
    let kinds: Vec<_> = inc.tasks.iter().map(|t| t.kind).collect();
    assert_eq!(kinds, [TaskKind::Activity, TaskKind::Complete]);
    assert_eq!(inc.tasks[0].name, "charge");
    assert_eq!(
        inc.tasks[0].payload.as_ref().unwrap().as_str(),
        "[\"o-1\",100]"
    );
    assert_eq!(
        inc.tasks[1].payload.as_ref().unwrap().as_str(),
        "\"receipt\""
    );
    assert!(inc.reducer.finished());
}

/// ```text
///  1 task_started
///  2 workflow_started
///  3 timer_started id=1 fire_at=1000
///  4 activity_scheduled id=2 'a'
///  5 task_started
///  6 timer_fired id=1
///  7 activity_cancel_requested id=2
///  8 timer_started id=3 fire_at=2000
///  9 task_started
/// 10 activity_completed id=2        (late: no job)
/// 11 task_started
/// 12 timer_fired id=3
/// 13 workflow_completed
/// ```
#[test]
fn timeout_cancels_activity_and_late_result_is_ignored() {
    let mut h = HistoryBuilder::new();
    h.task(1).workflow_started("wf", "[]");
    h.timer_started(1000).activity_scheduled("a", "[]");
    h.task(1000).timer_fired(1);
    h.activity_cancel_requested(2).timer_started(2000);
    h.task(1500).activity_completed(2, "1");
    h.task(2000).timer_fired(3).workflow_completed("null");
    let make = || {
        |r: &mut Reducer, a: &Activation, log: &mut Vec<String>| -> Result<()> {
            match job_kinds(a).as_slice() {
                [EventKind::WorkflowStarted] => {
                    let t = r.start_timer(1000)?;
                    let act = r.schedule_activity("a", b"[]", b"{}")?;
                    log.push(format!("timer {t} activity {act}"));
                }
                [EventKind::TimerFired] if a.jobs[0].id == 1 => {
                    r.cancel_activity(2)?;
                    r.start_timer(2000)?;
                }
                [] => log.push("woken with nothing".into()),
                [EventKind::TimerFired] => r.complete(b"null")?,
                other => panic!("unexpected jobs {other:?}"),
            }
            Ok(())
        }
    };
    let (inc, trace) = scenario(make, &h);
    assert!(trace.contains(&"woken with nothing".to_owned()));
    let kinds: Vec<_> = inc.tasks.iter().map(|t| t.kind).collect();
    assert_eq!(
        kinds,
        [
            TaskKind::Timer,
            TaskKind::Activity,
            TaskKind::CancelActivity,
            TaskKind::Timer,
            TaskKind::Complete
        ]
    );
    assert_eq!(inc.tasks[0].time, 1000);
    assert_eq!(inc.tasks[3].time, 2000);
}

/// ```text
///  1 task_started
///  2 workflow_started
///  3 timer_started id=1
///  4 task_started
///  5 signal_received 'stop'
///  6 timer_canceled id=1
///  7 task_started
///  8 timer_fired id=1               (after cancel: no job)
///  9 signal_received 'go'
/// 10 workflow_completed
/// ```
#[test]
fn cancelled_timer_fire_is_ignored() {
    let mut h = HistoryBuilder::new();
    h.task(1).workflow_started("wf", "[]");
    h.timer_started(50);
    h.task(10).signal_received("stop", "1").timer_canceled(1);
    h.task(60).timer_fired(1).signal_received("go", "{\"n\":1}");
    h.workflow_completed("1");
    let make = || {
        |r: &mut Reducer, a: &Activation, _: &mut Vec<String>| -> Result<()> {
            match job_kinds(a).as_slice() {
                [EventKind::WorkflowStarted] => {
                    r.start_timer(50)?;
                }
                [EventKind::SignalReceived] if a.jobs[0].name == "stop" => r.cancel_timer(1)?,
                [EventKind::SignalReceived] => {
                    assert_eq!(a.jobs[0].name, "go");
                    assert_eq!(a.jobs[0].payload.as_ref().unwrap().as_str(), "{\"n\":1}");
                    r.complete(b"1")?;
                }
                other => panic!("unexpected jobs {other:?}"),
            }
            Ok(())
        }
    };
    scenario(make, &h);
}

/// Commands cancelled in the step that issued them are withdrawn: no event, no task, and the
/// ids they took stay taken (history skips them):
///
/// ```text
///  1 task_started
///  2 workflow_started
///                                   (timer 1, activity 2, child 3: issued and cancelled)
///  3 activity_scheduled id=4 'kept'
///  4 task_started
///  5 activity_completed id=4
///  6 workflow_completed
/// ```
#[test]
fn cancel_in_the_same_step_withdraws_the_command() {
    let mut h = HistoryBuilder::new();
    h.task(1).workflow_started("wf", "[]");
    h.activity_scheduled_with_id(4, "kept", "[]");
    h.task(2).activity_completed(4, "1");
    h.workflow_completed("1");
    let make = || {
        |r: &mut Reducer, a: &Activation, log: &mut Vec<String>| -> Result<()> {
            match job_kinds(a).as_slice() {
                [EventKind::WorkflowStarted] => {
                    let t = r.start_timer(50)?;
                    let len = r.history_length_here();
                    let act = r.schedule_activity("dropped", b"[]", b"{}")?;
                    let child = r.start_child("c", b"[]", br#"{"instance_id":"c-1"}"#)?;
                    r.cancel_activity(act)?;
                    r.cancel_timer(t)?;
                    r.cancel_child(child)?;
                    let kept = r.schedule_activity("kept", b"[]", b"{}")?;
                    log.push(format!("ids {t} {act} {child} {kept}, length {len}"));
                }
                [EventKind::ActivityCompleted] => r.complete(b"1")?,
                other => panic!("unexpected jobs {other:?}"),
            }
            Ok(())
        }
    };
    let (inc, trace) = scenario(make, &h);
    assert!(
        trace.contains(&"ids 1 2 3 4, length 2".to_owned()),
        "{trace:?}"
    );
    let kinds: Vec<_> = inc.tasks.iter().map(|t| t.kind).collect();
    assert_eq!(kinds, [TaskKind::Activity, TaskKind::Complete]);
    assert_eq!(inc.tasks[0].id, 4);
}

/// A history recorded before withdrawal existed (start and cancel in one task) still replays.
#[test]
fn recorded_start_and_cancel_in_one_task_still_replay() {
    let mut h = HistoryBuilder::new();
    h.task(1).workflow_started("wf", "[]");
    h.timer_started(50)
        .timer_canceled(1)
        .activity_scheduled("a", "[]");
    let mut code = |r: &mut Reducer, _: &Activation, _: &mut Vec<String>| -> Result<()> {
        let t = r.start_timer(50)?;
        r.cancel_timer(t)?;
        r.schedule_activity("a", b"[]", b"{}")?;
        Ok(())
    };
    run_replay(&mut code, &h.build()).unwrap();
}

/// On replay a withdrawn command is matched against nothing; if the code no longer cancels it,
/// that is nondeterminism reported when the step ends (at the event that took its place).
#[test]
fn a_withdrawn_command_that_is_no_longer_cancelled_is_nondeterminism() {
    let mut h = HistoryBuilder::new();
    h.task(1).workflow_started("wf", "[]");
    h.activity_scheduled_with_id(2, "kept", "[]");
    let mut r = Reducer::new();
    r.load_history(&h.build()).unwrap();
    r.next_activation().unwrap();
    r.start_timer(50).unwrap();
    r.schedule_activity("kept", b"[]", b"{}").unwrap();
    let e = fails_unchanged(&mut r, |r| r.finish_activation());
    let (seq, expected, got, _) = nondeterminism(e);
    assert_eq!(
        (seq, expected.as_str(), got.as_str()),
        (3, "activity_scheduled 'kept'", "start_timer")
    );
    // An id history skips cannot be answered.
    let mut bad = HistoryBuilder::new();
    bad.task(1).workflow_started("wf", "[]");
    bad.activity_scheduled_with_id(2, "kept", "[]");
    bad.task(2).timer_fired(1);
    let e = Reducer::new().load_history(&bad.build()).unwrap_err();
    assert!(matches!(e, Error::HistoryCorrupt { seq: 5, .. }), "{e:?}");
}

/// ```text
///  1 task_started
///  2 workflow_started
///  3 side_effect_recorded id=1 value=0.42
///  4 marker_recorded id=2 'fix-1'
///  5 activity_scheduled id=3 'new'
///  6 task_started
///  7 activity_failed id=3
///  8 workflow_failed
/// ```
#[test]
fn side_effect_and_patch() {
    let mut h = HistoryBuilder::new();
    h.task(1).workflow_started("wf", "[]");
    h.side_effect_recorded("0.42").marker_recorded("fix-1");
    h.activity_scheduled("new", "[]");
    h.task(2).activity_failed(3, "{\"type\":\"Boom\"}");
    h.workflow_failed("{\"type\":\"Boom\"}");
    let make = || {
        let mut calls = 0;
        move |r: &mut Reducer, a: &Activation, log: &mut Vec<String>| -> Result<()> {
            match job_kinds(a).as_slice() {
                [EventKind::WorkflowStarted] => {
                    // A replay must not compute the value again: pass None then.
                    calls += 1;
                    let value = (!r.replaying()).then_some(&b"0.42"[..]);
                    let (id, v) = r.side_effect(value)?;
                    log.push(format!("side effect {id} = {}", v.as_str()));
                    let patched = r.patched("fix-1", false)?;
                    assert!(patched);
                    assert!(
                        r.patched("fix-1", false)?,
                        "memoised for the rest of the run"
                    );
                    r.schedule_activity(if patched { "new" } else { "old" }, b"[]", b"{}")?;
                }
                [EventKind::ActivityFailed] => {
                    assert_eq!(a.jobs[0].attempt, 3);
                    r.fail(a.jobs[0].payload.as_ref().unwrap().as_bytes())?;
                }
                other => panic!("unexpected jobs {other:?}"),
            }
            assert_eq!(calls, 1);
            Ok(())
        }
    };
    let (inc, trace) = scenario(make, &h);
    assert!(trace.contains(&"side effect 1 = 0.42".to_owned()));
    assert_eq!(inc.tasks.last().unwrap().kind, TaskKind::Fail);
}

/// Old history without the marker, replayed by code that has `patched("fix-1")`:
///
/// ```text
///  1 task_started
///  2 workflow_started
///  3 activity_scheduled id=1 'old'
///  4 task_started
///  5 activity_completed id=1
///  6 workflow_completed
/// ```
///
/// and a history made by the patched code, replayed after `deprecate_patch("fix-1")`:
///
/// ```text
///  1 task_started
///  2 workflow_started
///  3 marker_recorded id=1 'fix-1'
///  4 activity_scheduled id=2 'new'
/// ```
#[test]
fn patched_returns_false_for_old_histories_and_deprecate_consumes_markers() {
    let mut old = HistoryBuilder::new();
    old.task(1).workflow_started("wf", "[]");
    old.activity_scheduled("old", "[]");
    old.task(2)
        .activity_completed(1, "1")
        .workflow_completed("1");

    let patched_code = |r: &mut Reducer, a: &Activation, log: &mut Vec<String>| -> Result<()> {
        if a.jobs[0].kind == EventKind::WorkflowStarted {
            let p = r.patched("fix-1", false)?;
            log.push(format!("patched={p}"));
            r.schedule_activity(if p { "new" } else { "old" }, b"[]", b"{}")?;
        } else {
            r.complete(b"1")?;
        }
        Ok(())
    };
    let (trace, _) = run_replay(&mut { patched_code }, &old.build()).unwrap();
    assert!(trace.contains(&"patched=false".to_owned()));

    let mut new = HistoryBuilder::new();
    new.task(1).workflow_started("wf", "[]");
    new.marker_recorded("fix-1").activity_scheduled("new", "[]");
    let deprecated = |r: &mut Reducer, _: &Activation, _: &mut Vec<String>| -> Result<()> {
        assert!(r.patched("fix-1", true)?);
        r.schedule_activity("new", b"[]", b"{}")?;
        Ok(())
    };
    run_replay(&mut { deprecated }, &new.build()).unwrap();
    // Fresh, the deprecated patch records nothing: the activity gets id 1.
    let inc = run_incremental(
        &mut { deprecated },
        &[(1, vec![inbox::workflow_started("wf")])],
    )
    .unwrap();
    assert_eq!(inc.tasks[0].id, 1);
    assert_eq!(inc.history.len(), 3);
}

/// ```text
///  1 task_started
///  2 workflow_started
///  3 child_scheduled id=1 'child-a'
///  4 child_scheduled id=2 'child-b'
///  5 signal_external_sent id=3 'ping'
///  6 task_started
///  7 child_completed id=1
///  8 signal_external_completed id=3 failure=null
///  9 child_cancel_requested id=2
/// 10 child_scheduled id=4 'child-c'
/// 11 task_started
/// 12 cancel_requested 'user'
/// 13 workflow_canceled             (child-c still running: cancel_child task)
/// ```
#[test]
fn children_signals_and_parent_close() {
    let mut h = HistoryBuilder::new();
    h.task(1).workflow_started("parent", "[]");
    h.child_scheduled("child-a", "p/1")
        .child_scheduled("child-b", "p/2");
    h.signal_external_sent("ping");
    h.task(2)
        .child_completed(1, "\"a\"")
        .signal_external_completed(3, None);
    h.child_cancel_requested(2)
        .child_scheduled("child-c", "p/4");
    h.task(3).cancel_requested("user").workflow_canceled();
    let make = || {
        |r: &mut Reducer, a: &Activation, _: &mut Vec<String>| -> Result<()> {
            match job_kinds(a).as_slice() {
                [EventKind::WorkflowStarted] => {
                    r.start_child("child-a", b"[]", br#"{"instance_id":"p/1"}"#)?;
                    r.start_child("child-b", b"[]", br#"{"instance_id":"p/2"}"#)?;
                    r.signal_external("ping", b"1", br#"{"instance_id":"other"}"#)?;
                }
                [EventKind::ChildCompleted, EventKind::SignalExternalCompleted] => {
                    assert_eq!(a.jobs[1].payload, None, "delivered: no failure");
                    r.cancel_child(2)?;
                    r.start_child("child-c", b"[]", br#"{"instance_id":"p/4"}"#)?;
                }
                [EventKind::CancelRequested] => {
                    assert_eq!(a.jobs[0].name, "user");
                    assert_eq!(a.jobs[0].payload.as_ref().unwrap().as_str(), "\"user\"");
                    r.cancel()?;
                }
                other => panic!("unexpected jobs {other:?}"),
            }
            Ok(())
        }
    };
    let (inc, _) = scenario(make, &h);
    let tasks: Vec<_> = inc
        .tasks
        .iter()
        .map(|t| {
            (
                t.kind,
                t.id,
                t.options.as_ref().map(|o| o.as_str().to_owned()),
            )
        })
        .collect();
    let opt = |s: &str| Some(s.to_owned());
    assert_eq!(
        tasks,
        [
            (TaskKind::StartChild, 1, opt(r#"{"instance_id":"p/1"}"#)),
            (TaskKind::StartChild, 2, opt(r#"{"instance_id":"p/2"}"#)),
            (
                TaskKind::SignalExternal,
                3,
                opt(r#"{"instance_id":"other"}"#)
            ),
            (TaskKind::CancelChild, 2, opt(r#"{"instance_id":"p/2"}"#)),
            (TaskKind::StartChild, 4, opt(r#"{"instance_id":"p/4"}"#)),
            (TaskKind::CancelChild, 4, opt(r#"{"instance_id":"p/4"}"#)),
            (TaskKind::Canceled, 0, None),
        ]
    );
}

/// ```text
///  1 task_started
///  2 workflow_started
///  3 timer_started id=1
///  4 task_started
///  5 timed_out
///  6 workflow_continued_as_new
/// ```
#[test]
fn continue_as_new() {
    let mut h = HistoryBuilder::new();
    h.task(1).workflow_started("wf", "[1]").timer_started(9);
    h.task(2).timed_out().workflow_continued_as_new("[2]");
    let make = || {
        |r: &mut Reducer, a: &Activation, _: &mut Vec<String>| -> Result<()> {
            match job_kinds(a).as_slice() {
                [EventKind::WorkflowStarted] => {
                    r.start_timer(9)?;
                }
                [EventKind::TimedOut] => r.continue_as_new(b"[2]", b"{}")?,
                other => panic!("unexpected jobs {other:?}"),
            }
            Ok(())
        }
    };
    let (inc, _) = scenario(make, &h);
    let last = inc.tasks.last().unwrap();
    assert_eq!(last.kind, TaskKind::ContinueAsNew);
    assert_eq!(last.payload.as_ref().unwrap().as_str(), "[2]");
}

// ---------------------------------------------------------------------------------------------
// Nondeterminism

/// A history whose event #12 is `activity_scheduled 'charge'`:
///
/// ```text
///  1 task_started
///  2 workflow_started
///  3 timer_started id=1
///  4 task_started
///  5 timer_fired id=1
///  6 timer_started id=2
///  7 task_started
///  8 timer_fired id=2
///  9 timer_started id=3
/// 10 task_started
/// 11 timer_fired id=3
/// 12 activity_scheduled id=4 'charge'
/// ```
fn three_timers_then_charge() -> HistoryBuilder {
    let mut h = HistoryBuilder::new();
    h.task(1).workflow_started("wf", "[]").timer_started(1);
    h.task(2).timer_fired(1).timer_started(2);
    h.task(3).timer_fired(2).timer_started(3);
    h.task(4).timer_fired(3).activity_scheduled("charge", "[]");
    h
}

/// Replays `history` with a workflow that sleeps three times, then calls `last` in the fourth
/// activation; returns the first error and checks it left the reducer unchanged.
fn replay_until_error(
    history: &[Vec<u8>],
    mut last: impl FnMut(&mut Reducer) -> Result<()>,
) -> Error {
    let mut r = Reducer::new();
    r.load_history(history).unwrap();
    let mut n = 0;
    loop {
        let a = r
            .next_activation()
            .unwrap()
            .expect("history has an activation left");
        n += 1;
        assert!(a.replaying);
        if n < 4 {
            r.start_timer(n).unwrap();
            r.finish_activation().unwrap();
            continue;
        }
        // `last` wraps its failing call in `fails_unchanged`.
        if let Err(e) = last(&mut r) {
            return e;
        }
        return fails_unchanged(&mut r, |r| r.finish_activation());
    }
}

fn nondeterminism(e: Error) -> (u64, String, String, String) {
    match e {
        Error::Nondeterminism(n) => (n.seq, n.expected, n.got, n.message),
        other => panic!("expected nondeterminism, got {other:?}"),
    }
}

#[test]
fn different_command_kind_names_event_expected_and_got() {
    let history = three_timers_then_charge().build();
    let e = replay_until_error(&history, |r| {
        let e = fails_unchanged(r, |r| r.start_timer(4));
        Err(e)
    });
    let (seq, expected, got, message) = nondeterminism(e);
    assert_eq!(seq, 12);
    assert_eq!(expected, "activity_scheduled 'charge'");
    assert_eq!(got, "start_timer");
    assert_eq!(
        message,
        "history event #12 is activity_scheduled 'charge' but the workflow code issued start_timer"
    );
}

#[test]
fn changed_activity_name() {
    let history = three_timers_then_charge().build();
    let e = replay_until_error(&history, |r| {
        Err(fails_unchanged(r, |r| {
            r.schedule_activity("refund", b"[]", b"{}")
        }))
    });
    let (seq, expected, got, _) = nondeterminism(e);
    assert_eq!(
        (seq, expected.as_str(), got.as_str()),
        (
            12,
            "activity_scheduled 'charge'",
            "schedule_activity 'refund'"
        )
    );
}

#[test]
fn recorded_command_no_longer_issued() {
    let history = three_timers_then_charge().build();
    let e = replay_until_error(&history, |_| Ok(()));
    let (seq, expected, got, message) = nondeterminism(e);
    assert_eq!(
        (seq, expected.as_str()),
        (12, "activity_scheduled 'charge'")
    );
    assert_eq!(got, "no further command");
    assert!(message.contains("no longer issues"), "{message}");
}

#[test]
fn extra_command_in_replayed_batch() {
    let history = three_timers_then_charge().build();
    let e = replay_until_error(&history, |r| {
        r.schedule_activity("charge", b"[]", b"{}")?;
        // Accepted for now: a cancel in this same step would withdraw it.
        r.start_timer(5)?;
        Err(fails_unchanged(r, |r| r.finish_activation()))
    });
    let (seq, expected, got, message) = nondeterminism(e);
    assert_eq!(seq, 13, "the next sequence number: history ran out");
    assert_eq!(expected, "no further command");
    assert_eq!(got, "start_timer");
    assert!(message.contains("history ends at event #12"), "{message}");
}

#[test]
fn completion_while_batch_has_recorded_commands() {
    let history = three_timers_then_charge().build();
    let e = replay_until_error(&history, |r| Err(fails_unchanged(r, |r| r.complete(b"1"))));
    let (seq, expected, got, _) = nondeterminism(e);
    assert_eq!(
        (seq, expected.as_str(), got.as_str()),
        (12, "activity_scheduled 'charge'", "complete")
    );
}

#[test]
fn extra_command_before_next_recorded_task() {
    // Event #4 starts the second task; the code issues a second command in the first.
    let mut h = HistoryBuilder::new();
    h.task(1).workflow_started("wf", "[]").timer_started(1);
    h.task(2).timer_fired(1);
    let mut r = Reducer::new();
    r.load_history(&h.build()).unwrap();
    r.next_activation().unwrap();
    r.start_timer(1).unwrap();
    let e = fails_unchanged(&mut r, |r| r.side_effect(None));
    let (seq, _, got, message) = nondeterminism(e);
    assert_eq!((seq, got.as_str()), (4, "side_effect"));
    assert!(message.contains("ending at history event #3"), "{message}");
}

#[test]
fn inbound_event_for_a_command_never_issued() {
    let mut r = Reducer::new();
    r.add_new_batch(1, &[inbox::workflow_started("wf")])
        .unwrap();
    r.next_activation().unwrap();
    r.start_timer(5).unwrap();
    r.finish_activation().unwrap();
    r.add_new_batch(2, &[inbox::activity_completed(7, "1")])
        .unwrap();
    let e = fails_unchanged(&mut r, |r| r.next_activation());
    let (seq, expected, got, message) = nondeterminism(e);
    assert_eq!(seq, 5);
    assert_eq!(expected, "activity_completed for command 7");
    assert_eq!(got, "no command 7");
    assert!(message.contains("never issued command 7"), "{message}");
    // The same id but the wrong kind of command.
    let mut r = Reducer::new();
    r.add_new_batch(1, &[inbox::workflow_started("wf")])
        .unwrap();
    r.next_activation().unwrap();
    r.start_timer(5).unwrap();
    r.finish_activation().unwrap();
    r.add_new_batch(2, &[inbox::activity_completed(1, "1")])
        .unwrap();
    let e = fails_unchanged(&mut r, |r| r.next_activation());
    let (seq, expected, got, _) = nondeterminism(e);
    assert_eq!(
        (seq, expected.as_str(), got.as_str()),
        (5, "activity_completed for command 1", "start_timer")
    );
}

#[test]
fn patched_does_not_consume_a_marker_for_another_change() {
    let mut h = HistoryBuilder::new();
    h.task(1).workflow_started("wf", "[]").marker_recorded("a");
    let mut r = Reducer::new();
    r.load_history(&h.build()).unwrap();
    r.next_activation().unwrap();
    assert!(!r.patched("b", false).unwrap());
    let e = fails_unchanged(&mut r, |r| r.finish_activation());
    let (seq, expected, _, _) = nondeterminism(e);
    assert_eq!((seq, expected.as_str()), (3, "marker_recorded 'a'"));
    assert!(r.patched("a", false).unwrap());
    r.finish_activation().unwrap();
}

// ---------------------------------------------------------------------------------------------
// Engine bugs

fn engine_bug(e: Error) -> String {
    match e {
        Error::EngineBug { message } => message,
        other => panic!("expected an engine bug, got {other:?}"),
    }
}

fn started() -> Reducer {
    let mut r = Reducer::new();
    r.add_new_batch(1, &[inbox::workflow_started("wf")])
        .unwrap();
    r.next_activation().unwrap();
    r
}

#[test]
fn engine_bugs_leave_the_reducer_unchanged() {
    let mut idle = Reducer::new();
    engine_bug(fails_unchanged(&mut idle, |r| r.start_timer(1)));
    engine_bug(fails_unchanged(&mut idle, |r| r.patched("x", false)));
    engine_bug(fails_unchanged(&mut idle, |r| r.finish_activation()));

    let mut r = started();
    engine_bug(fails_unchanged(&mut r, |r| r.next_activation()));
    engine_bug(fails_unchanged(&mut r, |r| r.cancel_activity(1)));
    engine_bug(fails_unchanged(&mut r, |r| r.side_effect(None)));
    engine_bug(fails_unchanged(&mut r, |r| {
        r.schedule_activity("a", b"{", b"{}")
    }));
    engine_bug(fails_unchanged(&mut r, |r| r.complete(b"not json")));
    let t = r.start_timer(5).unwrap();
    let m = engine_bug(fails_unchanged(&mut r, |r| r.cancel_activity(t)));
    assert!(m.contains("start_timer"), "{m}");
    engine_bug(fails_unchanged(&mut r, |r| {
        r.add_new_batch(2, &[inbox::timer_fired(t)])
    }));
    r.cancel_timer(t).unwrap();
    let m = engine_bug(fails_unchanged(&mut r, |r| r.cancel_timer(t)));
    assert!(m.contains("illegal transition"), "{m}");
    r.complete(b"1").unwrap();
    let m = engine_bug(fails_unchanged(&mut r, |r| r.start_timer(9)));
    assert!(m.contains("Completed"), "{m}");
    engine_bug(fails_unchanged(&mut r, |r| r.fail(b"{}")));
    engine_bug(fails_unchanged(&mut r, |r| r.patched("x", false)));
    r.finish_activation().unwrap();
    engine_bug(fails_unchanged(&mut r, |r| r.finish_activation()));
    engine_bug(fails_unchanged(&mut r, |r| {
        r.add_new_batch(3, &[inbox::signal("s", "1")])
    }));
    engine_bug(fails_unchanged(&mut r, |r| {
        r.load_history(&[b"{}".to_vec()])
    }));
}

#[test]
fn duplicate_outcome_is_an_engine_bug() {
    let mut r = started();
    r.schedule_activity("a", b"[]", b"{}").unwrap();
    r.finish_activation().unwrap();
    r.add_new_batch(
        2,
        &[
            inbox::activity_completed(1, "1"),
            inbox::activity_completed(1, "2"),
        ],
    )
    .unwrap();
    let m = engine_bug(fails_unchanged(&mut r, |r| r.next_activation()));
    assert!(m.contains("activity machine in state Completed"), "{m}");
}

// ---------------------------------------------------------------------------------------------
// Corrupt history

fn corrupt_seq(e: Error) -> u64 {
    match e {
        Error::HistoryCorrupt { seq, .. } => seq,
        other => panic!("expected corrupt history, got {other:?}"),
    }
}

#[test]
fn corrupt_histories_name_the_event() {
    let good = {
        let mut h = HistoryBuilder::new();
        h.task(1)
            .workflow_started("wf", "[]")
            .activity_scheduled("a", "[]");
        h.task(2).activity_completed(1, "1").workflow_completed("1");
        h.build()
    };
    let check = |events: Vec<Vec<u8>>, seq: u64| {
        let mut r = Reducer::new();
        assert_eq!(
            corrupt_seq(fails_unchanged(&mut r, |r| r.load_history(&events))),
            seq
        );
    };
    // A gap in seq.
    let mut gap = good.clone();
    gap.remove(2);
    check(gap, 3);
    // Not starting with task_started.
    check(good[1..].to_vec(), 1);
    // Garbage in the middle.
    let mut garbage = good.clone();
    garbage[3] = b"{\"seq\":4,\"kind\":".to_vec();
    check(garbage, 4);
    // Something after the closing command.
    let mut h = HistoryBuilder::new();
    h.task(1)
        .workflow_started("wf", "[]")
        .workflow_completed("1")
        .timer_started(3);
    check(h.build(), 4);
    // Inbound after a command in one task.
    let mut h = HistoryBuilder::new();
    h.task(1)
        .workflow_started("wf", "[]")
        .timer_started(3)
        .signal_received("s", "1");
    check(h.build(), 4);
    // An outcome for a command of the same task.
    let mut h = HistoryBuilder::new();
    h.task(1).workflow_started("wf", "[]").timer_started(3);
    h.task(2).timer_fired(2);
    check(h.build(), 5);
    // An outcome of the wrong kind.
    let mut h = HistoryBuilder::new();
    h.task(1).workflow_started("wf", "[]").timer_started(3);
    h.task(2).activity_completed(1, "1");
    check(h.build(), 5);
    // A second outcome for one activity.
    let mut h = HistoryBuilder::new();
    h.task(1)
        .workflow_started("wf", "[]")
        .activity_scheduled("a", "[]");
    h.task(2).activity_completed(1, "1");
    h.task(3).activity_completed(1, "2");
    check(h.build(), 7);
    // A cancel after the timer fired.
    let mut h = HistoryBuilder::new();
    h.task(1).workflow_started("wf", "[]").timer_started(3);
    h.task(2).timer_fired(1).timer_canceled(1);
    check(h.build(), 6);
    // No workflow_started.
    let mut h = HistoryBuilder::new();
    h.task(1).signal_received("s", "1");
    check(h.build(), 2);
    // A new batch with a command event in it.
    let mut r = Reducer::new();
    let e = fails_unchanged(&mut r, |r| {
        r.add_new_batch(
            1,
            &[
                inbox::workflow_started("wf"),
                br#"{"kind":"timer_started","id":1,"fire_at":1}"#.to_vec(),
            ],
        )
    });
    assert_eq!(corrupt_seq(e), 3);
}

#[test]
fn a_failed_load_can_be_retried() {
    let mut h = HistoryBuilder::new();
    h.task(1)
        .workflow_started("wf", "[]")
        .activity_scheduled("a", "[]");
    let good = h.build();
    let mut bad = good.clone();
    bad[2] = b"nope".to_vec();
    let mut r = Reducer::new();
    fails_unchanged(&mut r, |r| r.load_history(&bad));
    r.load_history(&good).unwrap();
    assert_eq!(r.history_length(), 3);
}

#[test]
fn history_can_be_loaded_in_parts() {
    let mut h = HistoryBuilder::new();
    h.task(1)
        .workflow_started("wf", "[]")
        .activity_scheduled("a", "[]")
        .timer_started(3);
    h.task(2)
        .activity_completed(1, "1")
        .timer_fired(2)
        .workflow_completed("1");
    let all = h.build();
    let workflow = |r: &mut Reducer, a: &Activation, _: &mut Vec<String>| -> Result<()> {
        if a.jobs[0].kind == EventKind::WorkflowStarted {
            r.schedule_activity("a", b"[]", b"{}")?;
            r.start_timer(3)?;
        } else {
            r.complete(b"1")?;
        }
        Ok(())
    };
    let (whole, _) = run_replay(&mut { workflow }, &all).unwrap();
    for split in 1..all.len() {
        let mut r = Reducer::new();
        r.load_history(&all[..split]).unwrap();
        r.load_history(&all[split..]).unwrap();
        let mut trace = Vec::new();
        let wf = workflow;
        while let Some(a) = r.next_activation().unwrap() {
            trace.push(format!("activation time={}", a.time));
            for job in &a.jobs {
                trace.push(format!("  {job:?}"));
            }
            wf(&mut r, &a, &mut trace).unwrap();
            r.finish_activation().unwrap();
        }
        assert_eq!(trace, whole, "split at {split}");
        assert!(r.finished());
    }
}

#[test]
fn replay_then_continue_with_a_new_batch() {
    let mut h = HistoryBuilder::new();
    h.task(1)
        .workflow_started("wf", "[]")
        .activity_scheduled("a", "[]");
    let mut r = Reducer::new();
    r.load_history(&h.build()).unwrap();
    r.add_new_batch(5, &[inbox::activity_completed(1, "\"x\"")])
        .unwrap();
    let new_events = r.take_new_events();
    assert_eq!(
        as_text(&new_events),
        [
            r#"{"seq":4,"kind":"task_started","time":5}"#,
            r#"{"seq":5,"kind":"activity_completed","id":1,"result":"x","attempt":1}"#,
        ]
    );
    let a = r.next_activation().unwrap().unwrap();
    assert!(a.replaying);
    r.schedule_activity("a", b"[]", b"{}").unwrap();
    r.finish_activation().unwrap();
    let a = r.next_activation().unwrap().unwrap();
    assert!(!a.replaying && !r.replaying());
    assert_eq!(a.jobs[0].seq, 5);
    r.complete(b"\"x\"").unwrap();
    r.finish_activation().unwrap();
    assert_eq!(
        as_text(&r.take_new_events()),
        [r#"{"seq":6,"kind":"workflow_completed","result":"x"}"#]
    );
    assert_eq!(r.history_length(), 6);
}

/// A run recorded before the change (no marker) replays `patched("fix-1")` as false; once replay
/// has caught up, the same change id keeps answering false and records no marker:
///
/// ```text
///  1 task_started
///  2 workflow_started
///  3 activity_scheduled id=1 'old'
/// ```
#[test]
fn patched_keeps_a_false_answer_after_replay_caught_up() {
    let mut h = HistoryBuilder::new();
    h.task(1).workflow_started("wf", "[]");
    h.activity_scheduled("old", "[]");
    let mut r = Reducer::new();
    r.load_history(&h.build()).unwrap();
    r.next_activation().unwrap().unwrap();
    assert!(!r.patched("fix-1", false).unwrap());
    r.schedule_activity("old", b"[]", b"{}").unwrap();
    r.finish_activation().unwrap();
    r.add_new_batch(5, &[inbox::activity_completed(1, "1")])
        .unwrap();
    r.take_new_events();
    let a = r.next_activation().unwrap().unwrap();
    assert!(!a.replaying);
    assert!(!r.patched("fix-1", false).unwrap());
    r.schedule_activity("old", b"[]", b"{}").unwrap();
    r.finish_activation().unwrap();
    let events = as_text(&r.take_new_events());
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].contains("activity_scheduled"));
}

/// `history_length_here` is the length of history when the workflow task started, the same when
/// the batch is replayed as when it ran (three events per timer: started, task_started, fired).
#[test]
fn history_length_here_is_the_same_on_replay() {
    let code = |r: &mut Reducer, a: &Activation, log: &mut Vec<String>| -> Result<()> {
        log.push(format!("at start {}", r.history_length_here()));
        match job_kinds(a).as_slice() {
            [EventKind::WorkflowStarted] => {
                r.start_timer(10)?;
            }
            [EventKind::TimerFired] if a.jobs[0].id == 1 => {
                r.start_timer(20)?;
            }
            _ => r.complete(b"null")?,
        }
        log.push(format!("after command {}", r.history_length_here()));
        Ok(())
    };
    let inboxes = [
        (1, vec![inbox::workflow_started("wf")]),
        (10, vec![inbox::timer_fired(1)]),
        (20, vec![inbox::timer_fired(2)]),
    ];
    let inc = run_incremental(&mut { code }, &inboxes).unwrap();
    let (replayed, _) = run_replay(&mut { code }, &inc.history).unwrap();
    assert_eq!(inc.trace, replayed);
    let logged: Vec<&String> = replayed.iter().filter(|l| !l.starts_with(' ')).collect();
    let logged: Vec<&str> = logged
        .iter()
        .filter(|l| !l.starts_with("activation"))
        .map(|l| l.as_str())
        .collect();
    assert_eq!(
        logged,
        [
            "at start 2",
            "after command 2",
            "at start 5",
            "after command 5",
            "at start 8",
            "after command 8"
        ]
    );
}

/// `cancel_external` is a command answered like a signal:
///
/// ```text
///  1 task_started
///  2 workflow_started
///  3 external_cancel_requested id=1 (instance "other", reason "superseded")
///  4 task_started
///  5 signal_external_completed id=1 failure=null
///  6 workflow_completed
/// ```
#[test]
fn cancel_external_is_recorded_and_answered() {
    let mut h = HistoryBuilder::new();
    h.task(1).workflow_started("wf", "[]");
    h.external_cancel_requested("other", "superseded");
    h.task(2).signal_external_completed(1, None);
    h.workflow_completed("null");
    let make = || {
        |r: &mut Reducer, a: &Activation, log: &mut Vec<String>| -> Result<()> {
            match job_kinds(a).as_slice() {
                [EventKind::WorkflowStarted] => {
                    let id = r.cancel_external(br#"{"instance_id":"other"}"#, "superseded")?;
                    log.push(format!("cancel {id}"));
                }
                [EventKind::SignalExternalCompleted] => r.complete(b"null")?,
                other => panic!("unexpected jobs {other:?}"),
            }
            Ok(())
        }
    };
    let (inc, _) = scenario(make, &h);
    assert_eq!(inc.tasks[0].kind, TaskKind::CancelExternal);
    assert_eq!(
        inc.tasks[0].payload.as_ref().unwrap().as_str(),
        "\"superseded\""
    );
    // Another command in its place is nondeterminism.
    let e = run_replay(
        &mut |r: &mut Reducer, _: &Activation, _: &mut Vec<String>| -> Result<()> {
            r.signal_external("x", b"1", b"{}")?;
            Ok(())
        },
        &h.build(),
    )
    .unwrap_err();
    let (seq, expected, got, _) = nondeterminism(e);
    assert_eq!(
        (seq, expected.as_str(), got.as_str()),
        (3, "external_cancel_requested", "signal_external 'x'")
    );
}
