//! The local stand-in for an RDS point-in-time restore, for real: a PostgreSQL cluster
//! with WAL archiving, an accidental `DELETE`, and a restore to the instant before it into
//! a second cluster (base backup + WAL replay to the recovery target time).

use chrono::Duration;
use harness::pitr::{PitrCluster, PitrError, process_alive};

fn count(rows: &str) -> u32 {
    rows.trim()
        .parse()
        .unwrap_or_else(|e| panic!("a row count, got {rows:?}: {e}"))
}

#[test]
fn restore_to_the_instant_before_an_accidental_delete_brings_the_rows_back() {
    let mut cluster = PitrCluster::start().expect("a PITR cluster starts");
    cluster
        .sql("CREATE TABLE orders (id int PRIMARY KEY, item text NOT NULL)")
        .unwrap();
    cluster
        .sql("INSERT INTO orders SELECT n, 'item ' || n FROM generate_series(1, 250) n")
        .unwrap();
    cluster.archive_now().unwrap();
    let before_accident = cluster.server_now().unwrap();
    // The accident commits strictly after the noted instant.
    std::thread::sleep(std::time::Duration::from_millis(20));
    cluster.sql("DELETE FROM orders").unwrap();
    cluster.archive_now().unwrap();
    assert_eq!(
        count(&cluster.sql("SELECT count(*) FROM orders").unwrap()),
        0
    );

    let restored = cluster
        .restore_to(before_accident)
        .expect("the point-in-time restore succeeds");
    eprintln!(
        "point-in-time restore to {} took {:.2} s ({})",
        restored.target,
        restored.duration.as_secs_f64(),
        restored.url
    );
    assert_eq!(restored.target, before_accident);
    assert_ne!(Some(restored.url.clone()), cluster.url().ok());
    assert!(restored.duration > std::time::Duration::ZERO);
    assert_eq!(
        count(
            &cluster
                .sql_restored(&restored, "SELECT count(*) FROM orders")
                .unwrap()
        ),
        250,
        "the deleted rows are back in the restored cluster"
    );
    assert_eq!(
        cluster
            .sql_restored(&restored, "SELECT item FROM orders WHERE id = 42")
            .unwrap()
            .trim(),
        "item 42"
    );
    assert_eq!(
        cluster
            .sql_restored(&restored, "SELECT pg_is_in_recovery()")
            .unwrap()
            .trim(),
        "f",
        "the restored cluster was promoted and accepts writes"
    );
    cluster
        .sql_restored(
            &restored,
            "INSERT INTO orders VALUES (251, 'after restore')",
        )
        .expect("a write on the restored cluster");
    assert_eq!(
        count(&cluster.sql("SELECT count(*) FROM orders").unwrap()),
        0,
        "the original still has the damage"
    );

    // Outside the window: refused, nothing restored.
    let earliest = cluster.earliest_restorable();
    match cluster.restore_to(earliest - Duration::minutes(5)) {
        Err(PitrError::BeforeWindow {
            target,
            earliest: e,
        }) => {
            assert_eq!(target, earliest - Duration::minutes(5));
            assert_eq!(e, earliest);
        }
        other => panic!("a time before the base backup is refused, got {other:?}"),
    }
    let future = cluster.server_now().unwrap() + Duration::hours(1);
    let refused = cluster.restore_to(future).unwrap_err();
    assert!(matches!(refused, PitrError::InFuture { .. }), "{refused}");
    assert!(refused.to_string().contains("in the future"), "{refused}");
    assert_eq!(
        cluster.pids().len(),
        2,
        "no server was started for a refusal"
    );

    let pids = cluster.pids();
    let dir = cluster.directory().to_path_buf();
    assert!(pids.iter().all(|&p| process_alive(p)));
    assert!(dir.exists());
    cluster.stop().expect("both servers stop");
    for pid in pids {
        assert!(!process_alive(pid), "server {pid} is gone");
    }
    assert!(!dir.exists(), "{} is removed", dir.display());
    assert!(matches!(
        cluster.restore_to(before_accident),
        Err(PitrError::Stopped)
    ));
}

#[test]
fn dropping_the_cluster_stops_its_server_and_removes_its_directories() {
    let cluster = PitrCluster::start().expect("a PITR cluster starts");
    let pids = cluster.pids();
    let dir = cluster.directory().to_path_buf();
    assert_eq!(pids.len(), 1);
    assert!(process_alive(pids[0]));
    drop(cluster);
    assert!(!process_alive(pids[0]), "server {} is gone", pids[0]);
    assert!(!dir.exists(), "{} is removed", dir.display());
}
