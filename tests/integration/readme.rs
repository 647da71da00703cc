//! The README's first test, verbatim, so that the README cannot rot.

use sim_runtime::node;
use sim_runtime::time::{sleep, Duration};

#[sim_runtime::test(seeds = 32)]
async fn counter_survives_a_restart() {
    let server = node::node("server").build(|| async {
        sim_net::serve(7000, |n: u64| async move { n + 1 })
            .unwrap()
            .await
            .ok();
    });
    sleep(Duration::from_millis(1)).await;
    let addr = sim_net::Addr::new(server, 7000);
    assert_eq!(
        sim_net::call::<u64, u64>(addr, 41, Duration::from_secs(1)).await,
        Ok(42)
    );
    server.kill();
    assert_eq!(
        sim_net::call::<u64, u64>(addr, 1, Duration::from_secs(1)).await,
        Err(sim_net::RpcError::Refused)
    );
    server.restart();
    sleep(Duration::from_millis(1)).await;
    assert_eq!(
        sim_net::call::<u64, u64>(addr, 1, Duration::from_secs(1)).await,
        Ok(2)
    );
}
