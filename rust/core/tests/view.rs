//! `view_history`: what a recorded history says its run waits for, without running the code.

mod support;

use ostinato_core::{view_history, Error, PendingActivity, PendingTimer};
use support::*;

/// ```text
///  1 task_started                 8 activity_scheduled id=3 'refund'
///  2 workflow_started             9 child_scheduled id=4 'kid' (instance k-1)
///  3 activity_scheduled id=1     10 child_scheduled id=5 'kid' (instance k-2)
///  4 timer_started id=2          11 task_started
///  5 task_started                12 child_completed id=4
///  6 activity_completed id=1     13 activity_cancel_requested id=3
///  7 timer_fired id=2            14 timer_started id=6
/// ```
fn history() -> HistoryBuilder {
    let mut h = HistoryBuilder::new();
    h.task(10).workflow_started("orders", "[]");
    h.activity_scheduled("charge", "[]").timer_started(1_000);
    h.task(20).activity_completed(1, "1").timer_fired(2);
    h.activity_scheduled("refund", "[]");
    h.child_scheduled("kid", "k-1")
        .child_scheduled("kid", "k-2");
    h.task(30).child_completed(4, "null");
    h.activity_cancel_requested(3).timer_started(5_000);
    h
}

#[test]
fn pending_commands_are_those_still_waited_for() {
    let view = view_history(&history().build());
    assert_eq!(view.corrupt, None);
    assert_eq!(view.batches, 3);
    // charge completed, refund's cancel was requested: nothing is waited for.
    assert_eq!(view.activities, []);
    assert_eq!(
        view.timers,
        [PendingTimer {
            id: 6,
            fire_at: 5_000
        }]
    );
    let children: Vec<_> = view
        .children
        .iter()
        .map(|c| (c.id, c.name.as_str()))
        .collect();
    assert_eq!(children, [(5, "kid")]);
    assert!(view.children[0].options.as_str().contains("\"k-2\""));
}

#[test]
fn each_prefix_of_the_history_has_its_own_pending_set() {
    let events = history().build();
    let view = view_history(&events[..4]);
    assert_eq!(
        view.activities,
        [PendingActivity {
            id: 1,
            name: "charge".into()
        }]
    );
    assert_eq!(
        view.timers,
        [PendingTimer {
            id: 2,
            fire_at: 1_000
        }]
    );
    assert_eq!(view.batches, 1);
    assert_eq!(view_history(&events[..0]).batches, 0);
}

#[test]
fn a_corrupt_event_ends_the_view_and_is_named() {
    let mut events = history().build();
    events[6] = b"{\"seq\":7,\"kind\":\"timer_fired\"}".to_vec();
    let view = view_history(&events);
    assert!(
        matches!(view.corrupt, Some(Error::HistoryCorrupt { seq: 7, .. })),
        "{:?}",
        view.corrupt
    );
    // What the six events before it say: charge completed, the timer still runs.
    assert_eq!(view.activities, []);
    assert_eq!(
        view.timers,
        [PendingTimer {
            id: 2,
            fire_at: 1_000
        }]
    );
    assert_eq!(view.batches, 2);
}
