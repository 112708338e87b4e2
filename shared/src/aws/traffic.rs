//! Application traffic on Route 53 weighted records, shared by failover and failback:
//! each of the plan's traffic records is a pair of weighted CNAMEs, set identifiers
//! `primary` and `dr`, whose weights always add up to 100.

use super::{read_cname, resolve_hosted_zone};
use crate::dr::TrafficFacts;
use crate::error::AwsError;
use crate::failover::ChangeState;
use crate::plan::{Plan, normalize_dns_name};
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecord, ResourceRecordSet, RrType,
};

/// Set identifiers of the two weighted records.
pub const PRIMARY_SET: &str = "primary";
/// See [`PRIMARY_SET`].
pub const DR_SET: &str = "dr";

async fn zone(route53: &aws_sdk_route53::Client, plan: &Plan) -> Result<String, AwsError> {
    resolve_hosted_zone(route53, &plan.dns)
        .await?
        .ok_or_else(|| {
            AwsError::bad_request(
                "route53",
                "ListHostedZonesByName",
                plan.dns.hosted_zone_name.clone().unwrap_or_default(),
                "the plan's hosted zone does not exist",
            )
        })
}

/// The state of a Route 53 change, when it can be read.
pub async fn change_state(route53: &aws_sdk_route53::Client, id: &str) -> Option<ChangeState> {
    route53
        .get_change()
        .id(id)
        .send()
        .await
        .ok()
        .and_then(|out| out.change_info)
        .map(|c| match c.status {
            ChangeStatus::Insync => ChangeState::InSync,
            _ => ChangeState::Pending,
        })
}

/// The percent of traffic the plan's records send to the primary region, when every
/// record can be read and they agree; and the state of `change` when given.
pub async fn read_traffic(
    route53: &aws_sdk_route53::Client,
    plan: &Plan,
    change: Option<&str>,
) -> TrafficFacts {
    let mut percent: Option<Option<u32>> = None;
    if let Ok(zone) = zone(route53, plan).await {
        for t in &plan.failback.traffic {
            let this = match read_cname(route53, &zone, &t.name).await {
                Ok(Some(rec)) => {
                    let weight_of = |target: &str| {
                        rec.values
                            .iter()
                            .find(|(v, _)| normalize_dns_name(v) == normalize_dns_name(target))
                            .and_then(|(_, w)| *w)
                    };
                    match (weight_of(&t.primary_target), weight_of(&t.dr_target)) {
                        (Some(p), Some(d)) if p + d > 0 => Some((p * 100 / (p + d)) as u32),
                        _ => None,
                    }
                }
                _ => None,
            };
            percent = Some(match percent {
                None => this,
                Some(prev) if prev == this => prev,
                Some(_) => None,
            });
        }
    }
    TrafficFacts {
        primary_percent: percent.flatten(),
        change: match change {
            Some(id) => change_state(route53, id).await,
            None => None,
        },
    }
}

/// Weigh every traffic record: `primary_percent` to the primary region, the rest to the
/// DR region, in one change. Returns the change id.
pub async fn set_traffic(
    route53: &aws_sdk_route53::Client,
    plan: &Plan,
    primary_percent: u32,
) -> Result<String, AwsError> {
    let zone = zone(route53, plan).await?;
    let ttl = i64::from(plan.dns.record_ttl_seconds);
    let bad = |e: aws_sdk_route53::error::BuildError| {
        AwsError::bad_request("route53", "ChangeResourceRecordSets", &zone, e.to_string())
    };
    let mut changes = Vec::new();
    let primary = i64::from(primary_percent.min(100));
    for t in &plan.failback.traffic {
        for (set, target, weight) in [
            (PRIMARY_SET, &t.primary_target, primary),
            (DR_SET, &t.dr_target, 100 - primary),
        ] {
            let record = ResourceRecordSet::builder()
                .name(&t.name)
                .r#type(RrType::Cname)
                .set_identifier(set)
                .weight(weight)
                .ttl(ttl)
                .resource_records(
                    ResourceRecord::builder()
                        .value(target)
                        .build()
                        .map_err(bad)?,
                )
                .build()
                .map_err(bad)?;
            changes.push(
                Change::builder()
                    .action(ChangeAction::Upsert)
                    .resource_record_set(record)
                    .build()
                    .map_err(bad)?,
            );
        }
    }
    let out = route53
        .change_resource_record_sets()
        .hosted_zone_id(&zone)
        .change_batch(
            ChangeBatch::builder()
                .comment(format!(
                    "Lifeboat {}: {primary_percent} % of traffic to the primary region",
                    plan.name
                ))
                .set_changes(Some(changes))
                .build()
                .map_err(bad)?,
        )
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("route53", "ChangeResourceRecordSets", &zone, &e))?;
    Ok(out
        .change_info
        .map(|c| c.id.trim_start_matches("/change/").to_string())
        .unwrap_or_default())
}
