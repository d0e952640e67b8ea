//! The two ways phones reach the engine, so that one end-to-end suite runs through both: the
//! eas-edge host itself, or real Envoy running the proxy-wasm filter in front of the host's
//! capability endpoint.

use crate::envoy::Envoy;
use crate::gateway::{Gateway, GatewayOptions};
use crate::mailstack::MailStack;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrontEnd {
    Host,
    Envoy,
}

/// A started gateway, with Envoy in front of it for [`FrontEnd::Envoy`].
pub struct Front {
    pub gateway: Gateway,
    envoy: Option<Envoy>,
}

impl Front {
    pub fn start(
        kind: FrontEnd,
        stack: &MailStack,
        options: GatewayOptions,
    ) -> anyhow::Result<Front> {
        let gateway = Gateway::start_with(stack, options)?;
        let envoy = match kind {
            FrontEnd::Host => None,
            FrontEnd::Envoy => Some(Envoy::start(&gateway)?),
        };
        Ok(Front { gateway, envoy })
    }

    /// The ActiveSync endpoint URL phones use.
    pub fn url(&self) -> String {
        match &self.envoy {
            Some(envoy) => envoy.url(),
            None => self.gateway.url(),
        }
    }

    /// The logs of every process, for a failing test's message.
    pub fn logs(&self) -> String {
        let mut logs = self.gateway.log();
        if let Some(envoy) = &self.envoy {
            logs.push_str("\n--- envoy ---\n");
            logs.push_str(&envoy.log());
        }
        logs
    }
}

/// Runs each named test function (`fn name(front: FrontEnd)`) once per front end, as
/// `host::name` and `envoy::name`.
#[macro_export]
macro_rules! for_each_front_end {
    ($($name:ident),* $(,)?) => {
        mod host {
            $( #[test] fn $name() { super::$name($crate::front::FrontEnd::Host) } )*
        }
        mod envoy {
            $( #[test] fn $name() { super::$name($crate::front::FrontEnd::Envoy) } )*
        }
    };
}
