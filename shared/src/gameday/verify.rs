//! What a game day judges from AWS's answers (pure): whether the DR writers serve after
//! the failover, whether the DR replicas protect again after the failback, and the SQL
//! of the canary's write and read.

use crate::plan::{Plan, ResourceKind};
use crate::posture::{Observed, PostureFacts, RecordTarget, ResourceFacts, record_target};
use crate::validation::checks::{Dialect, IdentifierError, TableName};

/// The DR writers as the game day found them after the failover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterCheck {
    /// Every replicated resource with a writer record is served by an available DR
    /// writer (no longer a replica) that its record points at.
    pub answered: bool,
    /// One sentence per resource.
    pub details: Vec<String>,
}

fn facts_of<'f>(facts: &'f PostureFacts, id: &str) -> Option<&'f ResourceFacts> {
    facts.resources.iter().find(|f| f.id == id)
}

/// Judge the DR writers: for each replicated resource with a writer record, its DR
/// database must be available, write (replicate from nothing), and be what the record
/// points at. A plan with no writer record has nothing to answer through: that is said,
/// and not counted as a failure (the canary, when named, still writes).
pub fn dr_writers(plan: &Plan, facts: &PostureFacts) -> WriterCheck {
    let mut answered = true;
    let mut details = Vec::new();
    for r in plan.resources.iter().filter(|r| r.replica.is_some()) {
        let Some(record) = &r.dns_record else {
            continue;
        };
        let Some(f) = facts_of(facts, &r.id) else {
            answered = false;
            details.push(format!("{}: not looked at", r.id));
            continue;
        };
        let writer = match f.replica.as_ref() {
            Some(Observed::Present(s))
                if s.status == "available" && s.replicates_from.is_none() =>
            {
                Ok(s.identifier.clone())
            }
            Some(Observed::Present(s)) => Err(format!(
                "DR database {} is {}{}",
                s.identifier,
                s.status,
                s.replicates_from
                    .as_ref()
                    .map(|src| format!(" and still replicates from {src}"))
                    .unwrap_or_default()
            )),
            Some(Observed::Missing) => Err("the DR database does not exist".into()),
            Some(Observed::Unknown { reason }) => {
                Err(format!("the DR database could not be read: {reason}"))
            }
            None => Err("no DR database".into()),
        };
        let points = record_target(f) == Some(RecordTarget::Dr);
        match writer {
            Ok(id) if points => {
                details.push(format!("{record} points at the available DR writer {id}"))
            }
            Ok(id) => {
                answered = false;
                details.push(format!("{record} does NOT point at the DR writer {id}"));
            }
            Err(why) => {
                answered = false;
                details.push(format!("{record}: {why}"));
            }
        }
    }
    if details.is_empty() {
        details.push("the plan names no writer record to answer through".into());
    }
    WriterCheck { answered, details }
}

/// Whether every replicated resource has its DR replica again: the DR database exists,
/// is available, and replicates from the primary region (for an Aurora cluster: is a
/// secondary of its global database, which the adapter reports the same way).
pub fn protected(plan: &Plan, facts: &PostureFacts) -> bool {
    plan.resources
        .iter()
        .filter(|r| r.replica.is_some())
        .all(|r| {
            let Some(Some(Observed::Present(s))) = facts_of(facts, &r.id).map(|f| &f.replica)
            else {
                return false;
            };
            match r.kind {
                // A DynamoDB global table's replica is a peer: being there and ACTIVE is
                // being protected.
                ResourceKind::DynamodbTable => s.status == "ACTIVE",
                ResourceKind::RdsInstance | ResourceKind::AuroraCluster => {
                    s.status == "available" && s.replicates_from.is_some()
                }
            }
        })
}

/// The canary's two statements, with the table validated and quoted: the first writes
/// the game day's row, the second reads it back. Both take the row's id as their one
/// bound parameter; the time is the database's own, so no value is spliced.
///
/// The table is the plan owners' (`game_days.canary.table`), with at least the columns
/// `id` (text, unique) and `written_at` (a timestamp).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanarySql {
    /// `INSERT` of the row.
    pub write: String,
    /// `SELECT` of the row's id.
    pub read: String,
}

/// The canary's SQL for `dialect` and the plan's `table` (`table` or `schema.table`).
pub fn canary_sql(dialect: Dialect, table: &str) -> Result<CanarySql, IdentifierError> {
    let quoted = TableName::parse(table)?.quoted(dialect)?;
    Ok(match dialect {
        Dialect::Postgres => CanarySql {
            write: format!("INSERT INTO {quoted} (id, written_at) VALUES ($1, now())"),
            read: format!("SELECT id FROM {quoted} WHERE id = $1"),
        },
        Dialect::Mysql => CanarySql {
            write: format!(
                "INSERT INTO {quoted} (id, written_at) VALUES (?, CURRENT_TIMESTAMP(6))"
            ),
            read: format!("SELECT id FROM {quoted} WHERE id = ?"),
        },
    })
}

/// The canary row's id: the game day's, made unique per attempt (a verification run
/// again after a crash writes a new row rather than failing on the first).
pub fn canary_row_id(game_day: &str, attempt_millis: i64) -> String {
    let safe: String = game_day
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    format!("lifeboat-gameday-{safe}-{attempt_millis}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::parse_plan;
    use crate::posture::{RecordFacts, StoreFacts};
    use proptest::prelude::*;

    const LOCAL: &str = include_str!("../../../infra/plans/local.json");

    fn plan() -> Plan {
        parse_plan(LOCAL).unwrap()
    }

    fn store(id: &str, status: &str, endpoint: &str, from: Option<&str>) -> StoreFacts {
        StoreFacts {
            identifier: id.into(),
            region: "r".into(),
            status: status.into(),
            engine: Some("postgres".into()),
            endpoint: Some(endpoint.into()),
            encrypted: true,
            replicates_from: from.map(str::to_string),
            replicas: vec![],
            point_in_time_recovery: None,
        }
    }

    /// The posture of the local plan's replicated database: its DR copy as given, the
    /// record pointing at `record`.
    fn posture(plan: &Plan, replica: Observed<StoreFacts>, record: &str) -> PostureFacts {
        let r = plan.resources.iter().find(|r| r.replica.is_some()).unwrap();
        let mut resources: Vec<ResourceFacts> = plan
            .resources
            .iter()
            .filter(|x| x.id != r.id)
            .map(|x| ResourceFacts {
                id: x.id.clone(),
                primary: Observed::Missing,
                replica: None,
                record: None,
            })
            .collect();
        resources.push(ResourceFacts {
            id: r.id.clone(),
            primary: Observed::Present(store("p", "available", "primary.example", None)),
            replica: Some(replica),
            record: Some(Observed::Present(RecordFacts {
                name: "db".into(),
                values: vec![(record.into(), None)],
            })),
        });
        PostureFacts {
            resources,
            zone: Observed::Present("Z".into()),
            traffic: vec![],
            failover_state: Observed::Missing,
        }
    }

    #[test]
    fn a_promoted_replica_the_record_points_at_answers() {
        let p = plan();
        let f = posture(
            &p,
            Observed::Present(store("dr", "available", "dr.example", None)),
            "dr.example.",
        );
        let w = dr_writers(&p, &f);
        assert!(w.answered, "{w:?}");
        assert!(w.details[0].contains("points at the available DR writer dr"));
        assert!(!protected(&p, &f), "a promoted replica protects nothing");
    }

    #[test]
    fn a_writer_the_record_misses_or_a_replica_still_replicating_does_not_answer() {
        let p = plan();
        let f = posture(
            &p,
            Observed::Present(store("dr", "available", "dr.example", None)),
            "primary.example",
        );
        let w = dr_writers(&p, &f);
        assert!(!w.answered);
        assert!(w.details[0].contains("does NOT point"), "{w:?}");

        let f = posture(
            &p,
            Observed::Present(store("dr", "available", "dr.example", Some("p"))),
            "dr.example",
        );
        let w = dr_writers(&p, &f);
        assert!(!w.answered);
        assert!(w.details[0].contains("still replicates from p"), "{w:?}");
        assert!(protected(&p, &f), "a replica that replicates is protection");

        for replica in [
            Observed::Missing,
            Observed::Unknown {
                reason: "region down".into(),
            },
        ] {
            let f = posture(&p, replica, "dr.example");
            assert!(!dr_writers(&p, &f).answered);
            assert!(!protected(&p, &f));
        }
    }

    #[test]
    fn canary_sql_quotes_the_table_and_binds_the_id() {
        let pg = canary_sql(Dialect::Postgres, "lifeboat.canary").unwrap();
        assert_eq!(
            pg.write,
            "INSERT INTO \"lifeboat\".\"canary\" (id, written_at) VALUES ($1, now())"
        );
        assert_eq!(
            pg.read,
            "SELECT id FROM \"lifeboat\".\"canary\" WHERE id = $1"
        );
        let my = canary_sql(Dialect::Mysql, "canary").unwrap();
        assert_eq!(
            my.write,
            "INSERT INTO `canary` (id, written_at) VALUES (?, CURRENT_TIMESTAMP(6))"
        );
        assert_eq!(my.read, "SELECT id FROM `canary` WHERE id = ?");
        for bad in ["canary; DROP TABLE users", "a.b.c", "", "\"x\""] {
            assert!(canary_sql(Dialect::Postgres, bad).is_err(), "{bad}");
        }
    }

    proptest! {
        /// Whatever the plan's table says, the statement is either refused or holds the
        /// name only inside quotes: nothing of it can end the statement.
        #[test]
        fn canary_table_names_never_escape_their_quotes(table in "[a-z_;\"` .-]{0,20}") {
            if let Ok(sql) = canary_sql(Dialect::Postgres, &table) {
                prop_assert!(!sql.write.contains(';'));
                let quoted_parts = table.split('.').all(|part| sql.write.contains(&format!("\"{part}\"")));
                prop_assert!(quoted_parts);
            }
        }

        #[test]
        fn canary_row_ids_are_plain_and_bounded(id in ".{0,200}", at in 0i64..i64::MAX) {
            let row = canary_row_id(&id, at);
            prop_assert!(row.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
            prop_assert!(row.len() <= 17 + 64 + 1 + 19);
        }
    }
}
