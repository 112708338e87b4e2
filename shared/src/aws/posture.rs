//! Gathering the posture facts from AWS: RDS, DynamoDB, Route 53 and the state table.

use super::AwsClients;
use crate::error::AwsError;
use crate::plan::{DnsSettings, Plan, ProtectedResource, ResourceKind, normalize_dns_name};
use crate::posture::{Observed, PostureFacts, RecordFacts, ResourceFacts, StoreFacts};
use crate::state::StateStore;
use aws_sdk_route53::types::RrType;

/// Resolve the plan's hosted zone to its id: the id itself, or the one zone with that name.
pub async fn resolve_hosted_zone(
    route53: &aws_sdk_route53::Client,
    dns: &DnsSettings,
) -> Result<Option<String>, AwsError> {
    if let Some(id) = &dns.hosted_zone_id {
        return Ok(Some(id.trim_start_matches("/hostedzone/").to_string()));
    }
    let Some(name) = &dns.hosted_zone_name else {
        return Ok(None);
    };
    let wanted = normalize_dns_name(name);
    let out = route53
        .list_hosted_zones_by_name()
        .dns_name(&wanted)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("route53", "ListHostedZonesByName", &wanted, &e))?;
    let matches: Vec<String> = out
        .hosted_zones()
        .iter()
        .filter(|z| normalize_dns_name(z.name()) == wanted)
        .map(|z| z.id().trim_start_matches("/hostedzone/").to_string())
        .collect();
    match matches.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one.clone())),
        many => Err(AwsError::bad_request(
            "route53",
            "ListHostedZonesByName",
            &wanted,
            format!(
                "{} zones are named {wanted} ({}); name the zone by `hosted_zone_id` in the plan",
                many.len(),
                many.join(", ")
            ),
        )),
    }
}

/// The CNAME record set(s) named `name` (several when weighted).
pub async fn read_cname(
    route53: &aws_sdk_route53::Client,
    zone_id: &str,
    name: &str,
) -> Result<Option<RecordFacts>, AwsError> {
    let wanted = normalize_dns_name(name);
    let out = route53
        .list_resource_record_sets()
        .hosted_zone_id(zone_id)
        .start_record_name(&wanted)
        .start_record_type(RrType::Cname)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("route53", "ListResourceRecordSets", &wanted, &e))?;
    let values: Vec<(String, Option<i64>)> = out
        .resource_record_sets()
        .iter()
        .filter(|r| normalize_dns_name(r.name()) == wanted && r.r#type() == &RrType::Cname)
        .flat_map(|r| {
            r.resource_records()
                .iter()
                .map(move |v| (v.value().to_string(), r.weight()))
        })
        .collect();
    Ok((!values.is_empty()).then_some(RecordFacts {
        name: wanted,
        values,
    }))
}

fn observe<T>(result: Result<Option<T>, AwsError>) -> Observed<T> {
    match result {
        Ok(Some(v)) => Observed::Present(v),
        Ok(None) => Observed::Missing,
        Err(e) => Observed::Unknown {
            reason: e.to_string(),
        },
    }
}

/// Describe an RDS DB instance; `None` when it does not exist.
pub async fn describe_instance(
    rds: &aws_sdk_rds::Client,
    region: &str,
    identifier: &str,
) -> Result<Option<StoreFacts>, AwsError> {
    Ok(fetch_instance(rds, identifier)
        .await?
        .map(|db| instance_facts(&db, region, identifier)))
}

/// The SDK's description of a DB instance; `None` when it does not exist.
pub(crate) async fn fetch_instance(
    rds: &aws_sdk_rds::Client,
    identifier: &str,
) -> Result<Option<aws_sdk_rds::types::DbInstance>, AwsError> {
    match rds
        .describe_db_instances()
        .db_instance_identifier(identifier)
        .send()
        .await
    {
        Ok(out) => Ok(out.db_instances.and_then(|v| v.into_iter().next())),
        Err(e) => {
            let err = AwsError::from_sdk("rds", "DescribeDBInstances", identifier, &e);
            if err.is_code("DBInstanceNotFound") {
                Ok(None)
            } else {
                Err(err)
            }
        }
    }
}

/// A DB instance's facts.
pub(crate) fn instance_facts(
    db: &aws_sdk_rds::types::DbInstance,
    region: &str,
    identifier: &str,
) -> StoreFacts {
    StoreFacts {
        identifier: db
            .db_instance_identifier()
            .unwrap_or(identifier)
            .to_string(),
        region: region.to_string(),
        status: db.db_instance_status().unwrap_or("unknown").to_string(),
        engine: db.engine().map(str::to_string),
        endpoint: db.endpoint().and_then(|e| e.address()).map(str::to_string),
        encrypted: db.storage_encrypted().unwrap_or(false),
        replicates_from: db
            .read_replica_source_db_instance_identifier()
            .map(str::to_string),
        replicas: db.read_replica_db_instance_identifiers().to_vec(),
        point_in_time_recovery: None,
    }
}

/// Describe an Aurora DB cluster; `None` when it does not exist.
pub async fn describe_cluster(
    rds: &aws_sdk_rds::Client,
    region: &str,
    identifier: &str,
) -> Result<Option<StoreFacts>, AwsError> {
    let out = match rds
        .describe_db_clusters()
        .db_cluster_identifier(identifier)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) => {
            let err = AwsError::from_sdk("rds", "DescribeDBClusters", identifier, &e);
            return if err.is_code("DBClusterNotFoundFault") {
                Ok(None)
            } else {
                Err(err)
            };
        }
    };
    Ok(out.db_clusters().first().map(|c| StoreFacts {
        identifier: c.db_cluster_identifier().unwrap_or(identifier).to_string(),
        region: region.to_string(),
        status: c.status().unwrap_or("unknown").to_string(),
        engine: c.engine().map(str::to_string),
        endpoint: c.endpoint().map(str::to_string),
        encrypted: c.storage_encrypted().unwrap_or(false),
        replicates_from: c.replication_source_identifier().map(str::to_string),
        replicas: c.read_replica_identifiers().to_vec(),
        point_in_time_recovery: None,
    }))
}

/// Describe a DynamoDB table and its point-in-time recovery; `None` when it does not exist.
pub async fn describe_table(
    dynamodb: &aws_sdk_dynamodb::Client,
    region: &str,
    name: &str,
) -> Result<Option<StoreFacts>, AwsError> {
    let table = match dynamodb.describe_table().table_name(name).send().await {
        Ok(out) => out.table,
        Err(e) => {
            let err = AwsError::from_sdk("dynamodb", "DescribeTable", name, &e);
            return if err.is_code("ResourceNotFoundException") {
                Ok(None)
            } else {
                Err(err)
            };
        }
    };
    let Some(table) = table else { return Ok(None) };
    let pitr = dynamodb
        .describe_continuous_backups()
        .table_name(name)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("dynamodb", "DescribeContinuousBackups", name, &e))?
        .continuous_backups_description
        .and_then(|d| d.point_in_time_recovery_description)
        .and_then(|p| p.point_in_time_recovery_status)
        .map(|s| s.as_str() == "ENABLED");
    Ok(Some(StoreFacts {
        identifier: name.to_string(),
        region: region.to_string(),
        status: table
            .table_status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|| "unknown".into()),
        engine: None,
        endpoint: None,
        // DynamoDB encrypts every table at rest (an AWS-owned key when none is chosen).
        encrypted: true,
        replicates_from: None,
        replicas: vec![],
        point_in_time_recovery: pitr,
    }))
}

async fn describe_primary(clients: &AwsClients, r: &ProtectedResource) -> Observed<StoreFacts> {
    let region = &clients.primary.region;
    observe(match r.kind {
        ResourceKind::RdsInstance => {
            describe_instance(&clients.primary.rds, region, r.aws_identifier()).await
        }
        ResourceKind::AuroraCluster => {
            describe_cluster(&clients.primary.rds, region, r.aws_identifier()).await
        }
        ResourceKind::DynamodbTable => {
            describe_table(&clients.primary.dynamodb, region, r.aws_identifier()).await
        }
    })
}

async fn describe_replica(
    clients: &AwsClients,
    r: &ProtectedResource,
) -> Option<Observed<StoreFacts>> {
    let replica = r.replica.as_ref()?;
    let region = &clients.dr.region;
    Some(observe(match r.kind {
        ResourceKind::AuroraCluster => {
            describe_cluster(&clients.dr.rds, region, &replica.identifier).await
        }
        _ => describe_instance(&clients.dr.rds, region, &replica.identifier).await,
    }))
}

/// Read every fact the posture report needs. Never fails: what cannot be read is
/// reported as unreadable, with the reason.
pub async fn gather_posture(
    plan: &Plan,
    clients: &AwsClients,
    state: &dyn StateStore,
) -> PostureFacts {
    let zone = observe(resolve_hosted_zone(&clients.route53, &plan.dns).await);
    let mut resources = Vec::new();
    for r in &plan.resources {
        let record = match (&r.dns_record, &zone) {
            (None, _) => None,
            (Some(name), Observed::Present(zone_id)) => {
                Some(observe(read_cname(&clients.route53, zone_id, name).await))
            }
            (Some(_), Observed::Missing) => Some(Observed::Missing),
            (Some(_), Observed::Unknown { reason }) => Some(Observed::Unknown {
                reason: reason.clone(),
            }),
        };
        resources.push(ResourceFacts {
            id: r.id.clone(),
            primary: describe_primary(clients, r).await,
            replica: describe_replica(clients, r).await,
            record,
        });
    }
    let mut traffic = Vec::new();
    for t in &plan.failback.traffic {
        traffic.push(match &zone {
            Observed::Present(zone_id) => {
                observe(read_cname(&clients.route53, zone_id, &t.name).await)
            }
            Observed::Missing => Observed::Missing,
            Observed::Unknown { reason } => Observed::Unknown {
                reason: reason.clone(),
            },
        });
    }
    let failover_state = match crate::state::load::<crate::failover::run::DrDocument>(
        state,
        &crate::failover::run::dr_key(plan),
    )
    .await
    {
        Ok(None) => Observed::Missing,
        Ok(Some(doc)) => Observed::Present(doc.value.state.phase()),
        Err(e) => Observed::Unknown {
            reason: e.to_string(),
        },
    };
    PostureFacts {
        resources,
        zone,
        traffic,
        failover_state,
    }
}
