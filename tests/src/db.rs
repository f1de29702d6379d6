//! Test databases: the public harness's ([`portcullis::testing::TestDatabase`]), under the
//! names these tests have always used. `TEST_BACKEND=postgres|mysql` makes every
//! [`crate::TestApp`] use that server, so the endpoint tests run on it too.

pub use portcullis::testing::{Backend, TestDatabase as TestDb};
