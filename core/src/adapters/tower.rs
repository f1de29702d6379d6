//! A tower [`Service`] over the engine, for axum's `nest_service` and any tower stack.
//!
//! ```no_run
//! # async fn run(auth: portcullis::Auth) {
//! // let app = axum::Router::new().nest_service("/api/auth", auth.service());
//! # }
//! ```

use std::convert::Infallible;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Request;
use tower_service::Service;

use crate::auth::HttpResponse;
use crate::{Auth, BoxFuture};

/// The engine as a tower service. Made by [`Auth::service`] (paths relative to the mount
/// point, as `nest_service` passes them) or [`Auth::root_service`] (full paths).
#[derive(Debug, Clone)]
pub struct AuthService {
    auth: Auth,
    nested: bool,
}

impl Auth {
    /// A tower service for mounting under the base path, e.g.
    /// `Router::new().nest_service("/api/auth", auth.service())`: it expects paths relative
    /// to the mount point. For the client address, put a [`crate::ClientAddr`] in the
    /// request's extensions (or configure `ip_address_headers` behind a proxy).
    pub fn service(&self) -> AuthService {
        AuthService {
            auth: self.clone(),
            nested: true,
        }
    }

    /// A tower service that expects full paths (`/api/auth/get-session`).
    pub fn root_service(&self) -> AuthService {
        AuthService {
            auth: self.clone(),
            nested: false,
        }
    }
}

impl<B> Service<Request<B>> for AuthService
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = HttpResponse;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<HttpResponse, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let auth = self.auth.clone();
        let nested = self.nested;
        Box::pin(async move {
            Ok(if nested {
                auth.handle_nested(req).await
            } else {
                auth.handle(req).await
            })
        })
    }
}
