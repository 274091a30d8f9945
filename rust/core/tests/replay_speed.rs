//! How long replaying a long history takes. Run with
//! `cargo test --release -p ostinato-core --test replay_speed -- --nocapture` for real figures;
//! the assertion is loose so that debug builds on a slow CI machine pass too.

use ostinato_core::{EventKind, Reducer};
use std::time::{Duration, Instant};

const ACTIVITIES: u64 = 10_000;

/// A workflow that runs `ACTIVITIES` activities one after the other.
fn step(r: &mut Reducer, jobs: &[ostinato_core::Job]) {
    let done = match jobs.first().map(|j| j.kind) {
        Some(EventKind::WorkflowStarted) => 0,
        Some(EventKind::ActivityCompleted) => jobs[0].id,
        other => panic!("unexpected {other:?}"),
    };
    if done == ACTIVITIES {
        r.complete(b"\"done\"").unwrap();
    } else {
        r.schedule_activity("step", br#"["order-1",42]"#, br#"{"start_to_close":30}"#)
            .unwrap();
    }
}

fn build_history() -> (Vec<Vec<u8>>, Duration) {
    let started = Instant::now();
    let mut r = Reducer::new();
    let mut history = Vec::new();
    r.add_new_batch(
        0,
        &[br#"{"kind":"workflow_started","name":"long","input":[],"info":{}}"#],
    )
    .unwrap();
    for i in 0..=ACTIVITIES {
        let a = r.next_activation().unwrap().unwrap();
        step(&mut r, &a.jobs);
        r.finish_activation().unwrap();
        history.extend(r.take_new_events());
        r.take_tasks();
        if i < ACTIVITIES {
            let done = format!(
                r#"{{"kind":"activity_completed","id":{},"result":{{"ok":true,"n":{i}}},"attempt":1}}"#,
                i + 1
            );
            r.add_new_batch(i as i64 + 1, &[done.into_bytes()]).unwrap();
        }
    }
    assert!(r.finished());
    (history, started.elapsed())
}

#[test]
fn replays_ten_thousand_activities_quickly() {
    let (history, incremental) = build_history();
    assert_eq!(history.len() as u64, 3 * ACTIVITIES + 3);
    let mut best = Duration::MAX;
    let mut load = Duration::MAX;
    for _ in 0..5 {
        let started = Instant::now();
        let mut r = Reducer::new();
        r.load_history(&history).unwrap();
        load = load.min(started.elapsed());
        while let Some(a) = r.next_activation().unwrap() {
            step(&mut r, &a.jobs);
            r.finish_activation().unwrap();
        }
        assert!(r.finished() && r.take_new_events().is_empty());
        best = best.min(started.elapsed());
    }
    println!(
        "{} events: incremental run {:?}, full replay {:?} (load_history {:?}, then {} \
         activations)",
        history.len(),
        incremental,
        best,
        load,
        ACTIVITIES + 1,
    );
    assert!(best < Duration::from_secs(2), "replay took {best:?}");
}
