//! What every scenario's faults must satisfy, checked for each scenario: its fault matrix
//! survives a round trip through JSON (schedules are edited and replayed as files), its
//! swarm schedule is a function of the seed (a replay draws the same faults), and a
//! fault's `smaller` versions differ from it (shrinking makes progress).

use std::fmt::Debug;

use sim_runtime::schedule::FaultSchedule;

use crate::appointments::faults::ApptFault;
use crate::appointments::Appointments;
use crate::flash_sale::faults::FlashFault;
use crate::flash_sale::FlashSale;
use crate::interdomestik::faults::InterFault;
use crate::interdomestik::Interdomestik;
use crate::medistream::faults::MediFault;
use crate::medistream::Medistream;
use crate::scenario::Scenario;
use crate::shrink::ShrinkFault;
use crate::story_backend::faults::StoryFault;
use crate::story_backend::StoryBackend;

fn matrix_round_trips<S: Scenario>()
where
    S::Fault: PartialEq,
{
    for (info, schedule) in S::matrix() {
        let back = FaultSchedule::<S::Fault>::from_json(&schedule.to_json()).unwrap();
        assert_eq!(back, schedule, "{} {}", S::NAME, info.name);
    }
}

fn swarm_is_a_function_of_the_seed<S: Scenario>()
where
    S::Fault: PartialEq,
{
    let options = S::Options::default();
    let (swarm, schedule) = S::swarm(7, &options);
    assert_eq!((swarm, schedule.clone()), S::swarm(7, &options));
    assert!(
        (0..20).any(|s| S::swarm(s, &options).1 != schedule),
        "{}: every seed drew the same schedule",
        S::NAME
    );
}

fn every_smaller_fault_differs<F: ShrinkFault + PartialEq + Debug>(faults: &[F]) {
    for f in faults {
        let smaller = f.smaller();
        assert!(!smaller.is_empty(), "{f:?} does not shrink");
        assert!(smaller.iter().all(|g| g != f), "{f:?} shrinks to itself");
    }
}

#[test]
fn fault_matrices_round_trip_through_json() {
    matrix_round_trips::<FlashSale>();
    matrix_round_trips::<Appointments>();
    matrix_round_trips::<Medistream>();
    matrix_round_trips::<StoryBackend>();
    matrix_round_trips::<Interdomestik>();
}

#[test]
fn swarm_schedules_are_a_function_of_the_seed() {
    swarm_is_a_function_of_the_seed::<FlashSale>();
    swarm_is_a_function_of_the_seed::<Appointments>();
    swarm_is_a_function_of_the_seed::<Medistream>();
    swarm_is_a_function_of_the_seed::<StoryBackend>();
    swarm_is_a_function_of_the_seed::<Interdomestik>();
}

#[test]
fn every_smaller_fault_is_smaller() {
    every_smaller_fault_differs(&[FlashFault::WorkerCrash { down_ms: 25_000 }]);
    every_smaller_fault_differs(&[
        ApptFault::DbDown { for_ms: 10_000 },
        ApptFault::DbLatency {
            extra_ms: 800,
            for_ms: 10_000,
        },
    ]);
    every_smaller_fault_differs(&[
        MediFault::SignupFlood {
            clients: 120,
            for_ms: 3_000,
        },
        MediFault::CpuSaturation {
            cores_taken: 3,
            for_ms: 3_000,
        },
        MediFault::MalformedTokenFlood {
            per_s: 60,
            for_ms: 3_000,
        },
    ]);
    every_smaller_fault_differs(&[
        StoryFault::LatencySpike {
            extra_ms: 500,
            for_ms: 3_000,
        },
        StoryFault::MemoryPressure {
            instance: 1,
            percent: 80,
            for_ms: 3_000,
        },
        StoryFault::SlowQueries {
            extra_ms: 10_000,
            for_ms: 40_000,
        },
    ]);
    every_smaller_fault_differs(&[
        InterFault::DbSlow {
            extra_ms: 200,
            for_ms: 3_000,
        },
        InterFault::EmailDown { for_ms: 5_000 },
        InterFault::RegistrationBurst {
            clients: 10,
            per_client: 8,
            for_ms: 3_000,
        },
    ]);
}
