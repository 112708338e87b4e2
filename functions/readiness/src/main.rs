//! The readiness function: the DR readiness report (`{"action": "readiness"}` or its
//! schedule), computed from what AWS and the state table show, stored in the report
//! bucket and published as `ReadinessScore`. It reads and changes nothing, and takes no
//! lock, so it answers even while a failover runs.

use lifeboat::aws::ReadinessRun;
use lifeboat::function::{Deployment, serve};
use lifeboat::readiness::event::{InputError, parse_input};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let deployment = Deployment::start("readiness").await?;
    let readiness = &ReadinessRun {
        plan: &deployment.plan,
        clients: &deployment.clients,
        client_settings: &deployment.settings.clients,
        state: &deployment.state,
        reports: &deployment.reports,
    };
    serve(deployment, move |payload, invocation| async move {
        let input = parse_input(&payload)?;
        Ok::<_, InputError>(readiness.handle(input, &invocation).await)
    })
    .await
}
