//! The provisioner under test: the shared fixture plus the same `App` the binary builds, run in-process.
#![allow(dead_code)] // each test binary uses a different part of this module

use grant_adapters::Fault;
use provisioner::App;
use serde_json::Value;
use std::ops::{Deref, DerefMut};
pub use test_support::fixture::*;

pub struct Env {
    pub fixture: Fixture,
    pub app: App,
}

impl Env {
    pub async fn new() -> Env {
        let fixture = Fixture::new().await;
        let app = App::new(&fixture.sdk, fixture.settings.clone());
        Env { fixture, app }
    }

    pub async fn invoke(&self, payload: Value) -> Result<Value, Fault> {
        self.app.handle(payload).await
    }

    /// Invokes and expects a handled response (success or client error), not a fault.
    pub async fn call(&self, payload: Value) -> Value {
        self.invoke(payload.clone()).await.unwrap_or_else(|fault| panic!("{payload}: fault {fault}"))
    }
}

impl Deref for Env {
    type Target = Fixture;
    fn deref(&self) -> &Fixture {
        &self.fixture
    }
}

impl DerefMut for Env {
    fn deref_mut(&mut self) -> &mut Fixture {
        &mut self.fixture
    }
}
