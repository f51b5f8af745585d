//! What metering adds to a state change: the same lifecycle transitions (pending → running →
//! stopping → stopped → pending …), each in its own durable transaction as the server makes
//! them, once through `instances::transition` (which opens and closes usage intervals) and once
//! through the bare `UPDATE` without metering. Prints a table.
//!
//! `cargo bench -p gureum-store --bench metering`

use std::time::Instant;

use gureum_store::instances::InstanceRow;
use gureum_store::{SqliteStore, SqliteTx, StoreError, Tx};
use gureum_types::InstanceState;

const INSTANCES: usize = 200;
const ROUNDS: usize = 5;
const STATES: [InstanceState; 4] = [
    InstanceState::Running,
    InstanceState::Stopping,
    InstanceState::Stopped,
    InstanceState::Pending,
];

fn setup() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("state.db")).unwrap();
    store
        .sql_write(|c| {
            let tx = SqliteTx::new(c);
            tx.accounts().insert("123456789012", "bench", 0)?;
            for i in 0..INSTANCES {
                let id = format!("i-{i:017x}");
                tx.resources().insert(&id, "123456789012", "instance", 0)?;
                tx.instances().insert(&InstanceRow {
                    id,
                    account_id: "123456789012".into(),
                    instance_type: "t3.micro".into(),
                    state: InstanceState::Pending,
                    private_ip: format!("10.0.{}.{}", i / 250, i % 250 + 4),
                    root_volume_gib: 8,
                    ..Default::default()
                })?;
            }
            Ok::<_, StoreError>(())
        })
        .unwrap();
    (dir, store)
}

fn run(metered: bool) -> Vec<f64> {
    let (_dir, store) = setup();
    let mut lat = Vec::new();
    let mut now = 1_000;
    for _ in 0..ROUNDS {
        for state in STATES {
            for i in 0..INSTANCES {
                let id = format!("i-{i:017x}");
                now += 1;
                let t = Instant::now();
                store
                    .sql_write(|tx| {
                        let generation: i64 = tx.query_row(
                            "SELECT generation FROM instances WHERE id = ?1",
                            [&id],
                            |r| r.get(0),
                        )?;
                        if metered {
                            SqliteTx::new(tx).instances().transition(
                                &id, generation, state, None, None, None, now,
                            )?;
                        } else {
                            tx.execute(
                                "UPDATE instances SET state = ?3, generation = generation + 1, state_since = ?4 \
                                 WHERE id = ?1 AND generation = ?2",
                                rusqlite::params![id, generation, state.as_str(), now],
                            )?;
                        }
                        Ok::<_, StoreError>(())
                    })
                    .unwrap();
                lat.push(t.elapsed().as_secs_f64() * 1e6);
            }
        }
    }
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    lat
}

fn pct(v: &[f64], p: f64) -> f64 {
    v[((v.len() - 1) as f64 * p / 100.0).round() as usize]
}

fn main() {
    // Alternate to spread machine noise over both.
    let mut plain = Vec::new();
    let mut metered = Vec::new();
    for _ in 0..2 {
        plain.extend(run(false));
        metered.extend(run(true));
    }
    plain.sort_by(|a, b| a.partial_cmp(b).unwrap());
    metered.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "| state change (durable transaction, {} changes each) | p50 | p99 |",
        plain.len()
    );
    println!("| --- | --- | --- |");
    println!(
        "| without metering | {:.0} µs | {:.0} µs |",
        pct(&plain, 50.0),
        pct(&plain, 99.0)
    );
    println!(
        "| with metering | {:.0} µs | {:.0} µs |",
        pct(&metered, 50.0),
        pct(&metered, 99.0)
    );
    println!(
        "| metering adds (p50) | {:.0} µs | target < 1 ms |",
        pct(&metered, 50.0) - pct(&plain, 50.0)
    );
}
