//! `uuid`: sixteen bytes, read in the forms PostgreSQL's `uuid_in` accepts, written in
//! lower case with hyphens, ordered bytewise (as `uuid_cmp`'s `memcmp`).
//! `gen_random_uuid()` draws version-4 uuids from the simulation's seeded randomness,
//! never the operating system's.

use std::cell::RefCell;
use std::fmt;

use serde::{Deserialize, Serialize};
use sim_runtime::SimRng;

use crate::sql::error::SqlError;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// `uuid_in`: 32 hex digits, optionally in braces, with a hyphen allowed after any
    /// group of four digits but the last; nothing else (not even blanks). 22P02 otherwise.
    pub fn parse(s: &str) -> Result<Uuid, SqlError> {
        let invalid = || SqlError::InvalidTextRepresentation {
            detail: format!("type uuid: \"{s}\""),
        };
        let mut b = s.as_bytes();
        let braces = b.first() == Some(&b'{');
        if braces {
            b = &b[1..];
        }
        let mut out = [0u8; 16];
        for (i, byte) in out.iter_mut().enumerate() {
            let (Some(hi), Some(lo)) = (
                b.first().and_then(|c| (*c as char).to_digit(16)),
                b.get(1).and_then(|c| (*c as char).to_digit(16)),
            ) else {
                return Err(invalid());
            };
            *byte = (hi * 16 + lo) as u8;
            b = &b[2..];
            if b.first() == Some(&b'-') && i % 2 == 1 && i < 15 {
                b = &b[1..];
            }
        }
        if braces {
            if b.first() != Some(&b'}') {
                return Err(invalid());
            }
            b = &b[1..];
        }
        if !b.is_empty() {
            return Err(invalid());
        }
        Ok(Uuid(out))
    }

    /// A version-4 (random) uuid from `rng`, as `gen_random_uuid()` makes them.
    pub fn random_v4(rng: &mut SimRng) -> Uuid {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
        b[8..].copy_from_slice(&rng.next_u64().to_le_bytes());
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        Uuid(b)
    }

    /// `gen_random_uuid()`: drawn from one stream of the simulation (forked from its seed
    /// by name), so that every run of a seed draws the same uuids in the same order.
    pub fn generate() -> Result<Uuid, SqlError> {
        #[derive(Default)]
        struct Stream(RefCell<Option<SimRng>>);
        if !sim_runtime::is_running() {
            return Err(SqlError::FeatureNotSupported {
                feature: "gen_random_uuid() outside a simulation".into(),
            });
        }
        let stream = sim_runtime::extension::<Stream>();
        let mut rng = stream.0.borrow_mut();
        let rng = rng.get_or_insert_with(|| sim_runtime::rng_global("sql.gen_random_uuid"));
        Ok(Uuid::random_v4(rng))
    }
}

/// `a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11`.
impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uuid({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_input_forms_of_postgres() {
        let want = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
        for input in [
            "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
            "{a0eebc99-9c0b4ef8-bb6d6bb9-bd380a11}",
            "a0eebc999c0b4ef8bb6d6bb9bd380a11",
            "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11",
            "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
        ] {
            assert_eq!(Uuid::parse(input).unwrap().to_string(), want, "{input}");
        }
        for bad in [
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1",
            " a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11-",
            "a0e-ebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "",
        ] {
            assert_eq!(
                Uuid::parse(bad).unwrap_err().sqlstate(),
                Some("22P02"),
                "{bad}"
            );
        }
    }

    #[test]
    fn ordered_bytewise() {
        let a = Uuid::parse("00000000-0000-0000-0000-0000000000ff").unwrap();
        let b = Uuid::parse("00000000-0000-0000-0000-000000000100").unwrap();
        assert!(a < b);
    }

    #[test]
    fn random_uuids_are_version_4_and_follow_the_seed() {
        let draw = || {
            sim_runtime::Sim::new(7)
                .run(|| async {
                    (0..3)
                        .map(|_| Uuid::generate().unwrap())
                        .collect::<Vec<_>>()
                })
                .output
                .expect("the run finishes")
        };
        let a = draw();
        assert_eq!(a, draw(), "the same seed draws the same uuids");
        assert_ne!(a[0], a[1]);
        for u in &a {
            let s = u.to_string();
            assert_eq!(&s[14..15], "4", "{s}");
            assert!("89ab".contains(&s[19..20]), "{s}");
        }
    }
}
