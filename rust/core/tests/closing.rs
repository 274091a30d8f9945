//! How a run closes: the close status the reducer decides, and a workflow task failed without
//! running the code (`Reducer::fail_task`), numbered by the reducer after the loaded history.

use ostinato_core::{Error, Event, EventBody, EventKind, Reducer, TaskKind};

const STARTED: &[u8] = br#"{"kind":"workflow_started","name":"wf","input":[],"info":{}}"#;

/// A run with one workflow task: started, one activity scheduled (events 1-3).
fn history() -> Vec<Vec<u8>> {
    let mut r = Reducer::new();
    r.add_new_batch(10, &[STARTED]).unwrap();
    r.next_activation().unwrap().unwrap();
    r.schedule_activity("charge", b"[]", b"{}").unwrap();
    r.finish_activation().unwrap();
    r.take_new_events()
}

fn kinds(events: &[Vec<u8>]) -> Vec<(u64, EventKind)> {
    events
        .iter()
        .enumerate()
        .map(|(i, bytes)| {
            let seq = i as u64 + 1;
            (seq, Event::decode(bytes, seq).unwrap().body.kind())
        })
        .collect()
}

/// Runs one new workflow task over `inbox` and closes the run with `close`.
fn close_after(inbox: &[&[u8]], close: impl FnOnce(&mut Reducer)) -> Reducer {
    let mut r = Reducer::new();
    r.load_history(&history()).unwrap();
    while r.next_activation().unwrap().is_some() {
        r.schedule_activity("charge", b"null", b"null").unwrap();
        r.finish_activation().unwrap();
    }
    r.add_new_batch(20, inbox).unwrap();
    r.next_activation().unwrap().unwrap();
    close(&mut r);
    r.finish_activation().unwrap();
    r
}

#[test]
fn the_reducer_decides_the_close_status() {
    let completed = br#"{"kind":"activity_completed","id":1,"result":1,"attempt":1}"#;
    let timed_out = br#"{"kind":"timed_out"}"#;
    let status = |inbox: &[&[u8]], close: fn(&mut Reducer)| {
        let r = close_after(inbox, close);
        assert!(r.finished());
        r.close_status()
    };
    let fail: fn(&mut Reducer) = |r| r.fail(b"{}").unwrap();
    assert_eq!(status(&[completed], fail), Some("failed"));
    assert_eq!(status(&[timed_out], fail), Some("timed_out"));
    assert_eq!(status(&[completed, timed_out], fail), Some("timed_out"));
    assert_eq!(
        status(&[timed_out], |r| r.complete(b"1").unwrap()),
        Some("completed")
    );
    assert_eq!(
        status(&[completed], |r| r.cancel().unwrap()),
        Some("canceled")
    );
    assert_eq!(
        status(&[completed], |r| r.continue_as_new(b"[]", b"{}").unwrap()),
        Some("continued_as_new")
    );
    let mut open = Reducer::new();
    open.load_history(&history()).unwrap();
    assert_eq!(open.close_status(), None);
}

#[test]
fn a_failed_task_is_numbered_after_the_history() {
    let mut recorded = history();
    let mut r = Reducer::new();
    r.load_history(&recorded).unwrap();
    let inbox: &[&[u8]] = &[
        br#"{"kind":"signal_received","name":"go","payload":1}"#,
        br#"{"kind":"activity_completed","id":1,"result":null,"attempt":2}"#,
    ];
    r.fail_task(30, inbox, br#"{"type":"NonDeterminismError"}"#)
        .unwrap();
    assert!(r.finished());
    assert_eq!(r.close_status(), Some("failed"));
    let tasks = r.take_tasks();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].kind, TaskKind::Fail);
    assert_eq!(
        tasks[0].payload.as_ref().unwrap().as_str(),
        r#"{"type":"NonDeterminismError"}"#
    );
    let new = r.take_new_events();
    assert_eq!(
        String::from_utf8(new[0].clone()).unwrap(),
        r#"{"seq":4,"kind":"task_started","time":30}"#
    );
    assert_eq!(
        String::from_utf8(new[3].clone()).unwrap(),
        r#"{"seq":7,"kind":"workflow_failed","failure":{"type":"NonDeterminismError"}}"#
    );
    recorded.extend(new);
    assert_eq!(
        kinds(&recorded)[3..],
        [
            (4, EventKind::TaskStarted),
            (5, EventKind::SignalReceived),
            (6, EventKind::ActivityCompleted),
            (7, EventKind::WorkflowFailed),
        ]
    );
    // What it wrote is a valid history of a closed run.
    let mut replay = Reducer::new();
    replay.load_history(&recorded).unwrap();
    assert!(matches!(
        Event::decode(&recorded[6], 7).unwrap().body,
        EventBody::WorkflowFailed { .. }
    ));
}

#[test]
fn a_run_can_fail_in_its_first_task() {
    let mut r = Reducer::new();
    r.fail_task(5, &[STARTED], b"{}").unwrap();
    let kinds = kinds(&r.take_new_events());
    assert_eq!(
        kinds,
        [
            (1, EventKind::TaskStarted),
            (2, EventKind::WorkflowStarted),
            (3, EventKind::WorkflowFailed),
        ]
    );
}

#[test]
fn fail_task_refuses_what_only_a_bug_does_and_changes_nothing() {
    let engine_bug = |r: &mut Reducer, inbox: &[&[u8]], failure: &[u8]| {
        let before = r.clone();
        let result = r.fail_task(1, inbox, failure);
        assert!(matches!(result, Err(Error::EngineBug { .. })), "{result:?}");
        assert_eq!(*r, before);
    };
    let mut loaded = Reducer::new();
    loaded.load_history(&history()).unwrap();
    engine_bug(&mut loaded, &[], b"not json");
    let mut closed = close_after(&[], |r| r.complete(b"1").unwrap());
    engine_bug(&mut closed, &[], b"{}");
    let mut after_batch = Reducer::new();
    after_batch.load_history(&history()).unwrap();
    after_batch.add_new_batch(5, &[] as &[&[u8]]).unwrap();
    engine_bug(&mut after_batch, &[], b"{}");
    // A history that already closes the run.
    let mut done = close_after(&[], |r| r.complete(b"1").unwrap());
    let mut full = history();
    full.extend(done.take_new_events());
    let mut reloaded = Reducer::new();
    reloaded.load_history(&full).unwrap();
    engine_bug(&mut reloaded, &[], b"{}");
    // Inbox events are checked as add_new_batch checks them: corrupt, and nothing changes.
    let before = loaded.clone();
    let command: &[&[u8]] = &[br#"{"kind":"workflow_canceled"}"#];
    assert!(matches!(
        loaded.fail_task(1, command, b"{}"),
        Err(Error::HistoryCorrupt { seq: 5, .. })
    ));
    assert_eq!(loaded, before);
}
