//! Argon2id cost parameters and their accepted ranges.

use serde::{Deserialize, Serialize};

use super::VaultError;

/// Argon2id cost parameters, stored in the header so unlock re-derives the same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory cost in KiB.
    pub m_cost_kib: u32,
    /// Number of passes.
    pub t_cost: u32,
    /// Lanes (the `argon2` crate runs them sequentially without its `parallel` feature).
    pub p_cost: u32,
}

impl KdfParams {
    /// Lowest accepted memory cost (1 MiB). Low so tests stay fast; production uses the default.
    pub const MIN_M_COST_KIB: u32 = 1024;
    /// Highest accepted memory cost (4 GiB), so a doctored header cannot exhaust the host.
    pub const MAX_M_COST_KIB: u32 = 4 * 1024 * 1024;
    /// Lowest accepted pass count.
    pub const MIN_T_COST: u32 = 1;
    /// Highest accepted pass count; beyond this unlock would take minutes.
    pub const MAX_T_COST: u32 = 64;
    /// Lowest accepted lane count.
    pub const MIN_P_COST: u32 = 1;
    /// Highest accepted lane count.
    pub const MAX_P_COST: u32 = 64;

    /// Check every parameter against its bounds.
    pub fn validate(&self) -> Result<(), VaultError> {
        let check = |name, value, min, max| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(VaultError::InvalidKdfParams {
                    name,
                    value,
                    min,
                    max,
                })
            }
        };
        check(
            "m_cost_kib",
            self.m_cost_kib,
            Self::MIN_M_COST_KIB,
            Self::MAX_M_COST_KIB,
        )?;
        check("t_cost", self.t_cost, Self::MIN_T_COST, Self::MAX_T_COST)?;
        check("p_cost", self.p_cost, Self::MIN_P_COST, Self::MAX_P_COST)
    }
}

impl Default for KdfParams {
    /// 64 MiB, 3 passes, 1 lane: RFC 9106's second recommended option.
    fn default() -> Self {
        Self {
            m_cost_kib: 64 * 1024,
            t_cost: 3,
            p_cost: 1,
        }
    }
}
