//! AWS identifiers, compared the way AWS compares them.
//!
//! RDS stores the identifiers it names things by (DB instances, DB clusters, DB snapshots,
//! DB cluster snapshots, global clusters, parameter and subnet groups) in lower case: a
//! request may spell one in any case, and every response returns it lower-cased. So
//! `Orders-DB` in a plan and `orders-db` in a `DescribeDBSnapshots` answer are one
//! instance. DynamoDB table names are case-sensitive: `Orders` and `orders` are two tables.
//!
//! Lifeboat compares an identifier it was given (by the plan, an operator, an event or its
//! own stored state) with one AWS returned only through [`IdentifierRule`]; and the plan
//! holds its RDS identifiers in RDS's own form from load on
//! ([`crate::plan::Plan::normalise_identifiers`]), so what Lifeboat sends, names, tags and
//! reports is the same whichever case the plan was written in.

use crate::plan::ResourceKind;
use std::borrow::Cow;

/// How AWS tells two identifiers of one kind of resource apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentifierRule {
    /// RDS and Aurora: case-insensitive, stored and returned in lower case. RDS ARNs
    /// follow the same rule (their other parts are lower case already).
    Rds,
    /// DynamoDB table and backup names: the exact spelling.
    Exact,
}

impl IdentifierRule {
    /// The rule of a protected resource's identifier.
    pub fn of(kind: ResourceKind) -> Self {
        match kind {
            ResourceKind::RdsInstance | ResourceKind::AuroraCluster => IdentifierRule::Rds,
            ResourceKind::DynamodbTable => IdentifierRule::Exact,
        }
    }

    /// The form AWS stores `id` in: lower case for RDS, unchanged otherwise. Applying it
    /// twice changes nothing.
    pub fn canonical(self, id: &str) -> Cow<'_, str> {
        match self {
            IdentifierRule::Rds if id.bytes().any(|b| b.is_ascii_uppercase()) => {
                Cow::Owned(id.to_ascii_lowercase())
            }
            IdentifierRule::Rds | IdentifierRule::Exact => Cow::Borrowed(id),
        }
    }

    /// Whether `a` and `b` name the same resource.
    pub fn same(self, a: &str, b: &str) -> bool {
        match self {
            IdentifierRule::Rds => a.eq_ignore_ascii_case(b),
            IdentifierRule::Exact => a == b,
        }
    }
}

/// The parts of an RDS ARN: `arn:<partition>:rds:<region>:<account>:<type>:<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RdsArn<'a> {
    /// The region (empty for a global cluster).
    pub region: &'a str,
    /// The account id.
    pub account: &'a str,
    /// `db`, `cluster`, `snapshot`, `cluster-snapshot`, `global-cluster`, ...
    pub resource_type: &'a str,
    /// The identifier, as the ARN spells it.
    pub name: &'a str,
}

impl<'a> RdsArn<'a> {
    /// Split an RDS ARN; `None` for anything else (a plain identifier, another service's
    /// ARN).
    pub fn parse(arn: &'a str) -> Option<Self> {
        let mut parts = arn.splitn(7, ':');
        let (Some("arn"), Some(_partition), Some("rds")) =
            (parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let region = parts.next()?;
        let account = parts.next()?;
        let resource_type = parts.next()?;
        let name = parts.next()?;
        (!resource_type.is_empty() && !name.is_empty()).then_some(RdsArn {
            region,
            account,
            resource_type,
            name,
        })
    }

    /// Whether this ARN names the `resource_type` resource `id` (in `region`, when given).
    pub fn names(&self, resource_type: &str, id: &str, region: Option<&str>) -> bool {
        self.resource_type == resource_type
            && IdentifierRule::Rds.same(self.name, id)
            && region.is_none_or(|r| r == self.region)
    }
}

/// Whether `reference` — an RDS identifier, or an RDS ARN, as AWS names a replication
/// source, a replica or a global cluster member — names the `resource_type` resource
/// `id` (`db` for an instance, `cluster` for a cluster).
pub fn rds_reference_names(reference: &str, resource_type: &str, id: &str) -> bool {
    match RdsArn::parse(reference) {
        Some(arn) => arn.names(resource_type, id, None),
        None => !reference.starts_with("arn:") && IdentifierRule::Rds.same(reference, id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Identifiers as a plan may spell them: letters of either case, digits, hyphens.
    fn rds_id() -> impl Strategy<Value = String> {
        "[a-zA-Z][a-zA-Z0-9-]{0,40}"
    }

    /// The same identifier with each letter's case flipped or not, as `flips` says.
    fn respell(id: &str, flips: &[bool]) -> String {
        id.chars()
            .zip(flips.iter().copied().chain(std::iter::repeat(false)))
            .map(|(c, flip)| match (flip, c.is_ascii_uppercase()) {
                (false, _) => c,
                (true, true) => c.to_ascii_lowercase(),
                (true, false) => c.to_ascii_uppercase(),
            })
            .collect()
    }

    proptest! {
        #[test]
        fn rds_equality_ignores_case(id in rds_id(), flips in proptest::collection::vec(any::<bool>(), 0..41)) {
            let other = respell(&id, &flips);
            prop_assert!(IdentifierRule::Rds.same(&id, &other));
            prop_assert_eq!(IdentifierRule::Rds.canonical(&id), IdentifierRule::Rds.canonical(&other));
        }

        #[test]
        fn dynamodb_equality_is_exact(id in "[a-zA-Z0-9_.-]{3,40}", flips in proptest::collection::vec(any::<bool>(), 0..41)) {
            let other = respell(&id, &flips);
            prop_assert_eq!(IdentifierRule::Exact.same(&id, &other), id == other);
            prop_assert_eq!(IdentifierRule::Exact.canonical(&id), Cow::Borrowed(id.as_str()));
        }

        #[test]
        fn different_identifiers_stay_different(a in rds_id(), b in rds_id()) {
            prop_assert_eq!(
                IdentifierRule::Rds.same(&a, &b),
                a.chars().map(|c| c.to_ascii_lowercase()).eq(b.chars().map(|c| c.to_ascii_lowercase()))
            );
        }

        #[test]
        fn normalising_is_idempotent_and_lower_cases_rds(id in rds_id()) {
            for rule in [IdentifierRule::Rds, IdentifierRule::Exact] {
                let once = rule.canonical(&id).into_owned();
                prop_assert_eq!(rule.canonical(&once), Cow::Borrowed(once.as_str()));
                prop_assert!(rule.same(&once, &id));
            }
            let lower = IdentifierRule::Rds.canonical(&id);
            prop_assert!(!lower.bytes().any(|b| b.is_ascii_uppercase()));
        }

        #[test]
        fn an_arn_names_its_resource_in_any_case(id in rds_id(), flips in proptest::collection::vec(any::<bool>(), 0..41)) {
            let arn = format!("arn:aws:rds:us-east-1:123456789012:db:{}", id.to_ascii_lowercase());
            let asked = respell(&id, &flips);
            prop_assert!(rds_reference_names(&arn, "db", &asked));
            prop_assert!(!rds_reference_names(&arn, "cluster", &asked));
            prop_assert!(rds_reference_names(&id.to_ascii_lowercase(), "db", &asked));
        }

        #[test]
        fn parsing_never_panics(s in "\\PC{0,80}") {
            let _ = RdsArn::parse(&s);
            let _ = rds_reference_names(&s, "db", "x");
        }
    }

    #[test]
    fn kinds_have_their_services_rules() {
        assert_eq!(
            IdentifierRule::of(ResourceKind::RdsInstance),
            IdentifierRule::Rds
        );
        assert_eq!(
            IdentifierRule::of(ResourceKind::AuroraCluster),
            IdentifierRule::Rds
        );
        assert_eq!(
            IdentifierRule::of(ResourceKind::DynamodbTable),
            IdentifierRule::Exact
        );
        assert!(!IdentifierRule::Exact.same("Orders", "orders"));
        assert!(IdentifierRule::Rds.same("Orders-DB", "orders-db"));
    }

    #[test]
    fn arns_are_split_into_their_parts() {
        let arn = RdsArn::parse("arn:aws:rds:us-west-2:123456789012:cluster:Billing-DB").unwrap();
        assert_eq!(arn.region, "us-west-2");
        assert_eq!(arn.account, "123456789012");
        assert_eq!(arn.resource_type, "cluster");
        assert_eq!(arn.name, "Billing-DB");
        assert!(arn.names("cluster", "billing-db", Some("us-west-2")));
        assert!(!arn.names("cluster", "billing-db", Some("us-east-1")));
        assert!(!arn.names("cluster", "billing-db-2", None));
        let global = RdsArn::parse("arn:aws:rds::123456789012:global-cluster:g1").unwrap();
        assert_eq!(global.region, "");
        assert!(global.names("global-cluster", "G1", None));
        for not_rds in [
            "orders-db",
            "arn:aws:dynamodb:us-east-1:1:table/orders",
            "arn:aws:rds:us-east-1:1:db",
            "arn:aws:rds:us-east-1:1:db:",
            "",
        ] {
            assert_eq!(RdsArn::parse(not_rds), None, "{not_rds}");
        }
        // Something that looks like an ARN of another service never names an instance.
        assert!(!rds_reference_names(
            "arn:aws:dynamodb:us-east-1:1:table/orders-db",
            "db",
            "orders-db"
        ));
    }
}
