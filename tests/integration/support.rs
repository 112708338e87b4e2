//! What several tests share.

use harness::{Account, LocalAws, World, create_world};
use lifeboat::aws::DynamoStateStore;
use lifeboat::plan::{Plan, parse_plan};

/// The local stack's plan.
pub fn local_plan() -> Plan {
    parse_plan(include_str!("../../infra/plans/local.json")).expect("local plan")
}

/// A fresh account with the local plan's whole world in it.
pub async fn world() -> (Account, Plan, World) {
    let account = LocalAws::from_env().fresh_account();
    let plan = harness::plan_in_account(&local_plan(), &account);
    let world = create_world(&account, &plan)
        .await
        .unwrap_or_else(|e| panic!("creating the demo world: {e}"));
    (account, plan, world)
}

/// The state store on the world's table.
pub fn state_store(world: &World) -> DynamoStateStore {
    DynamoStateStore::new(
        world.clients.home.dynamodb.clone(),
        &world.control.state_table,
    )
}
