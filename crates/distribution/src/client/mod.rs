//! The registry client: OCI distribution-spec v1.1 / Docker Registry HTTP API v2 over reqwest
//! (rustls, system roots). `Client` holds connection pools, endpoint settings, credentials and
//! the token cache; `Repository` is one repository on one endpoint with its authorisation.
//!
//! Authorisation follows the registry: `GET /v2/` first (Docker's "ping"); 200 means anonymous,
//! 401 carries the challenge. Basic challenges get the stored credential; Bearer challenges send
//! us to the token service with `service` and `scope=repository:<path>:pull[,push]`. A 401 on a
//! later request (a token expired, or a scope the challenge now names) refreshes once.

mod endpoint;
mod repo;
mod response;

pub use endpoint::{Candidate, EndpointConfig, DOCKER_HUB_REGISTRY};
pub use repo::{BlobStream, FetchedManifest, ManifestInfo, MountOutcome, Repository};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use reqwest::header::{HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{StatusCode, Url};

use crate::auth::{challenge, Challenge, Credential, DockerConfig, Token, TokenCache};
use crate::error::{Error, Result};
use crate::reference::Reference;
use response::{read_bounded, status_error};

/// Largest token-service answer we read.
const MAX_TOKEN_RESPONSE: u64 = 1 << 20;

/// Settings for a `Client`.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub endpoints: EndpointConfig,
    /// Where stored logins are read from (and written by `login`); None: docker's default.
    pub docker_config: Option<DockerConfig>,
    pub user_agent: String,
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of a response before the attempt is retried.
    pub read_timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            endpoints: EndpointConfig::default(),
            docker_config: None,
            user_agent: format!("berth/{}", env!("CARGO_PKG_VERSION")),
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(60),
        }
    }
}

/// What a repository handle may do; decides the token scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Pull,
    Push,
}

pub struct Client {
    verified: reqwest::Client,
    unverified: reqwest::Client,
    config: ClientConfig,
    docker_config: DockerConfig,
    /// Credentials given by the caller (docker's X-Registry-Auth), over the config file's.
    explicit: Mutex<HashMap<String, Credential>>,
    tokens: TokenCache,
    /// Which candidate answered `/v2/` for a domain, and its challenge.
    pinged: Mutex<HashMap<String, Arc<Endpoint>>>,
}

/// An endpoint that answered `/v2/`.
#[derive(Debug)]
pub struct Endpoint {
    pub domain: String,
    pub candidate: Candidate,
    /// None: the registry lets anyone in.
    pub challenge: Option<Challenge>,
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Client> {
        let build = |skip_verify: bool| {
            reqwest::Client::builder()
                .user_agent(config.user_agent.clone())
                .connect_timeout(config.connect_timeout)
                .read_timeout(config.read_timeout)
                .tls_built_in_native_certs(true)
                .danger_accept_invalid_certs(skip_verify)
                // Blob GETs redirect to storage; reqwest drops Authorization across hosts.
                .redirect(reqwest::redirect::Policy::limited(10))
                .build()
                .map_err(|e| Error::Other(format!("build HTTP client: {e}")))
        };
        let docker_config = config
            .docker_config
            .clone()
            .unwrap_or_else(DockerConfig::default_location);
        Ok(Client {
            verified: build(false)?,
            unverified: build(true)?,
            docker_config,
            config,
            explicit: Mutex::new(HashMap::new()),
            tokens: TokenCache::default(),
            pinged: Mutex::new(HashMap::new()),
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    pub fn docker_config(&self) -> &DockerConfig {
        &self.docker_config
    }

    pub(crate) fn http(&self, candidate: &Candidate) -> &reqwest::Client {
        if candidate.skip_verify {
            &self.unverified
        } else {
            &self.verified
        }
    }

    /// Use `cred` for `domain` instead of what the config file holds (or None to forget it).
    pub fn set_credential(&self, domain: &str, cred: Option<Credential>) {
        let mut map = self.explicit.lock().unwrap_or_else(|p| p.into_inner());
        match cred {
            Some(c) => map.insert(domain.to_string(), c),
            None => map.remove(domain),
        };
    }

    /// The credential for `domain`: the caller's, else the docker config file's.
    pub fn credential(&self, domain: &str) -> Result<Option<Credential>> {
        let explicit = self
            .explicit
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(domain)
            .cloned();
        match explicit {
            Some(c) => Ok(Some(c)),
            None => self.docker_config.get(domain),
        }
    }

    /// Endpoints to try for `domain`, mirrors first for Docker Hub. Of an insecure registry's
    /// HTTPS and HTTP endpoints, the one that answered before is tried first.
    pub fn candidates(&self, domain: &str) -> Vec<Candidate> {
        let mut all = self.config.endpoints.candidates(domain);
        if !all.iter().any(|c| c.mirror) {
            let pinged = self.pinged.lock().unwrap_or_else(|p| p.into_inner());
            // Stable sort: answered endpoints first, order otherwise kept.
            all.sort_by_key(|c| !pinged.contains_key(&format!("{domain} {}", c.base)));
        }
        all
    }

    /// A handle on `reference`'s repository at the first endpoint that answers.
    pub async fn repository(
        self: &Arc<Self>,
        reference: &Reference,
        access: Access,
    ) -> Result<Repository> {
        let mut last = None;
        for c in self.candidates(reference.domain()) {
            match self.repository_at(&c, reference, access, &[]).await {
                Ok(r) => return Ok(r),
                // An endpoint that answered (denied, not found) has the last word.
                Err(e) if !c.mirror && !matches!(e, Error::Http { .. }) => return Err(e),
                Err(e) => {
                    tracing::debug!(endpoint = %c.base, error = %e, "endpoint unusable");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::Other(format!("no endpoint for {}", reference.domain()))))
    }

    /// A handle on `reference`'s repository at `candidate`. `extra_pull` names other
    /// repositories of the same registry the token must let us read (cross-repository mounts).
    pub async fn repository_at(
        self: &Arc<Self>,
        candidate: &Candidate,
        reference: &Reference,
        access: Access,
        extra_pull: &[String],
    ) -> Result<Repository> {
        let endpoint = self.ping(reference.domain(), candidate).await?;
        let mut scopes = vec![match access {
            Access::Pull => format!("repository:{}:pull", reference.path()),
            Access::Push => format!("repository:{}:pull,push", reference.path()),
        }];
        scopes.extend(extra_pull.iter().map(|p| format!("repository:{p}:pull")));
        let repo = Repository::new(self.clone(), endpoint, reference.path().to_string(), scopes);
        repo.authorize(None, false).await?;
        Ok(repo)
    }

    /// `GET /v2/` at `candidate`, cached per domain and endpoint.
    pub async fn ping(&self, domain: &str, candidate: &Candidate) -> Result<Arc<Endpoint>> {
        let key = format!("{domain} {}", candidate.base);
        if let Some(e) = self
            .pinged
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(e.clone());
        }
        let url = join(&candidate.base, "v2/", domain)?;
        let object = "API version check (GET /v2/)";
        let resp = self
            .http(candidate)
            .get(url.clone())
            .send()
            .await
            .map_err(|e| Error::Http {
                registry: domain.to_string(),
                object: format!("{object} at {url}"),
                context: "connect".into(),
                source: e,
            })?;
        let challenge = match resp.status() {
            s if s.is_success() => None,
            StatusCode::UNAUTHORIZED => {
                let header = resp
                    .headers()
                    .get_all(WWW_AUTHENTICATE)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .collect::<Vec<_>>()
                    .join(", ");
                let all = challenge::parse(&header);
                let chosen = all
                    .iter()
                    .find(|c| c.scheme == "bearer")
                    .or_else(|| all.iter().find(|c| c.scheme == "basic"))
                    .cloned();
                match chosen {
                    Some(c) => Some(c),
                    None => {
                        return Err(Error::Protocol {
                            registry: domain.to_string(),
                            object: object.into(),
                            reason: format!(
                                "401 without a Basic or Bearer challenge (WWW-Authenticate: {header:?})"
                            ),
                        })
                    }
                }
            }
            _ => return Err(status_error(domain, object, resp).await),
        };
        let endpoint = Arc::new(Endpoint {
            domain: domain.to_string(),
            candidate: candidate.clone(),
            challenge,
        });
        self.pinged
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, endpoint.clone());
        Ok(endpoint)
    }

    /// The Authorization header for `scopes` at `endpoint` (None when anonymous access is
    /// all there is). `fresh` skips the token cache.
    pub(crate) async fn authorization(
        &self,
        endpoint: &Endpoint,
        challenge: Option<&Challenge>,
        scopes: &[String],
        fresh: bool,
    ) -> Result<Option<HeaderValue>> {
        let Some(challenge) = challenge.or(endpoint.challenge.as_ref()) else {
            return Ok(None);
        };
        let cred = self.credential(&endpoint.domain)?;
        match challenge.scheme.as_str() {
            "basic" => Ok(cred.map(|c| basic_header(&c.username, &c.password))),
            "bearer" => {
                let token = self
                    .bearer_token(endpoint, challenge, scopes, cred.as_ref(), fresh)
                    .await?;
                HeaderValue::from_str(&format!("Bearer {}", token.value))
                    .map(Some)
                    .map_err(|_| Error::Protocol {
                        registry: endpoint.domain.clone(),
                        object: "token".into(),
                        reason: "token is not a valid header value".into(),
                    })
            }
            other => Err(Error::Protocol {
                registry: endpoint.domain.clone(),
                object: "authentication".into(),
                reason: format!("unsupported auth scheme {other:?}"),
            }),
        }
    }

    async fn bearer_token(
        &self,
        endpoint: &Endpoint,
        challenge: &Challenge,
        scopes: &[String],
        cred: Option<&Credential>,
        fresh: bool,
    ) -> Result<Token> {
        let domain = &endpoint.domain;
        let realm = challenge.param("realm").ok_or_else(|| Error::Protocol {
            registry: domain.clone(),
            object: "authentication".into(),
            reason: "Bearer challenge without a realm".into(),
        })?;
        let service = challenge.param("service").unwrap_or("");
        let who = cred.map_or("", |c| c.username.as_str());
        let key = TokenCache::key(realm, service, scopes, who);
        if !fresh {
            if let Some(t) = self.tokens.get(&key) {
                return Ok(t);
            }
        }
        let object = format!("token from {realm}");
        let realm_url = Url::parse(realm).map_err(|e| Error::Protocol {
            registry: domain.clone(),
            object: object.clone(),
            reason: format!("bad realm URL: {e}"),
        })?;
        let http = self.http(&endpoint.candidate);
        let request = match cred.and_then(|c| c.identity_token.as_deref()) {
            Some(refresh) => {
                // OAuth2 refresh-token grant, as docker does with an identitytoken.
                let mut form = vec![
                    ("grant_type", "refresh_token".to_string()),
                    ("refresh_token", refresh.to_string()),
                    ("service", service.to_string()),
                    ("client_id", "berth".to_string()),
                ];
                if !scopes.is_empty() {
                    form.push(("scope", scopes.join(" ")));
                }
                http.post(realm_url).form(&form)
            }
            None => {
                let mut url = realm_url;
                {
                    let mut q = url.query_pairs_mut();
                    if !service.is_empty() {
                        q.append_pair("service", service);
                    }
                    for s in scopes {
                        q.append_pair("scope", s);
                    }
                }
                let req = http.get(url);
                match cred {
                    Some(c) => req.header(AUTHORIZATION, basic_header(&c.username, &c.password)),
                    None => req,
                }
            }
        };
        let resp = request.send().await.map_err(|e| Error::Http {
            registry: domain.clone(),
            object: object.clone(),
            context: "request".into(),
            source: e,
        })?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let err = status_error(domain, &object, resp).await;
            return Err(match err {
                Error::Status { detail, .. } => Error::Unauthorized {
                    registry: domain.clone(),
                    object,
                    detail,
                },
                e => e,
            });
        }
        if !status.is_success() {
            return Err(status_error(domain, &object, resp).await);
        }
        let body = read_bounded(domain, &object, resp, MAX_TOKEN_RESPONSE).await?;
        let parsed: crate::auth::token::TokenResponse =
            serde_json::from_slice(&body).map_err(|e| Error::Protocol {
                registry: domain.clone(),
                object: object.clone(),
                reason: format!(
                    "answer is not token JSON ({e}): {}",
                    response::preview(&body)
                ),
            })?;
        let token = parsed.into_token().ok_or_else(|| Error::Protocol {
            registry: domain.clone(),
            object: object.clone(),
            reason: "answer holds no token".into(),
        })?;
        self.tokens.put(key, token.clone());
        Ok(token)
    }

    /// Check `cred` against `domain`: a Basic round trip, or a token grant from the bearer
    /// realm (what `POST /auth` does for the docker CLI).
    pub async fn check_login(self: &Arc<Self>, domain: &str, cred: &Credential) -> Result<()> {
        let mut last = None;
        for candidate in self.candidates(domain) {
            let endpoint = match self.ping(domain, &candidate).await {
                Ok(e) => e,
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            let Some(challenge) = endpoint.challenge.clone() else {
                return Ok(()); // nothing to check: the registry is open
            };
            return match challenge.scheme.as_str() {
                "bearer" => self
                    .bearer_token(&endpoint, &challenge, &[], Some(cred), true)
                    .await
                    .map(|_| ()),
                _ => {
                    let url = join(&candidate.base, "v2/", domain)?;
                    let resp = self
                        .http(&candidate)
                        .get(url)
                        .header(AUTHORIZATION, basic_header(&cred.username, &cred.password))
                        .send()
                        .await
                        .map_err(|e| Error::Http {
                            registry: domain.to_string(),
                            object: "login".into(),
                            context: "request".into(),
                            source: e,
                        })?;
                    if resp.status().is_success() {
                        Ok(())
                    } else if resp.status() == StatusCode::UNAUTHORIZED {
                        Err(Error::Unauthorized {
                            registry: domain.to_string(),
                            object: "login".into(),
                            detail: ": incorrect username or password".into(),
                        })
                    } else {
                        Err(status_error(domain, "login", resp).await)
                    }
                }
            };
        }
        Err(last.unwrap_or_else(|| Error::Other(format!("no endpoint for {domain}"))))
    }

    /// `docker login`: verify `cred` with the registry, then store it in the docker config.
    pub async fn login(self: &Arc<Self>, domain: &str, cred: &Credential) -> Result<()> {
        self.check_login(domain, cred).await?;
        self.docker_config.store(domain, cred)
    }

    /// `docker logout`: forget the stored credential. Returns whether there was one.
    pub fn logout(&self, domain: &str) -> Result<bool> {
        self.set_credential(domain, None);
        self.docker_config.erase(domain)
    }
}

fn basic_header(user: &str, pass: &str) -> HeaderValue {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    let mut v = HeaderValue::from_str(&format!("Basic {encoded}"))
        .unwrap_or_else(|_| HeaderValue::from_static("Basic"));
    v.set_sensitive(true);
    v
}

pub(crate) fn join(base: &Url, path: &str, domain: &str) -> Result<Url> {
    base.join(path).map_err(|e| Error::Protocol {
        registry: domain.to_string(),
        object: path.to_string(),
        reason: format!("bad URL: {e}"),
    })
}
