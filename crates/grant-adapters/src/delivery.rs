//! Delivered credentials (`credential_delivery` secrets_manager / ssm): written once the role exists and before
//! the grant is recorded `active`, deleted without a recovery window when it ends. The clients are made on first
//! use, so a deployment that delivers nothing neither builds them nor pays for them at cold start.

use crate::error::Fault;
use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata};
use grant_model::delivery::{GRANT_ID_TAG, REQUESTER_TAG};
use grant_model::response::Credentials;
use grant_model::{CredentialDelivery, CredentialsRef, Grant};
use std::sync::OnceLock;

pub struct Delivery {
    sdk: aws_config::SdkConfig,
    /// `SECRET_NAME_PREFIX`.
    prefix: String,
    secrets: OnceLock<aws_sdk_secretsmanager::Client>,
    parameters: OnceLock<aws_sdk_ssm::Client>,
}

impl Delivery {
    pub fn new(sdk: &aws_config::SdkConfig, prefix: &str) -> Delivery {
        Delivery { sdk: sdk.clone(), prefix: prefix.to_string(), secrets: OnceLock::new(), parameters: OnceLock::new() }
    }

    /// Where `delivery` puts `grant`'s credentials (by name), or None when they travel in the response.
    pub fn location(&self, delivery: CredentialDelivery, grant: &Grant) -> Option<CredentialsRef> {
        CredentialsRef::for_grant(delivery, &self.prefix, grant.database(), grant.grant_id())
    }

    /// Writes `credentials` to `location`, tagged with the requester and the grant; a new value if it exists.
    /// Returns where it is: a secret by its ARN, a parameter by its name.
    pub async fn put(
        &self,
        location: &CredentialsRef,
        grant: &Grant,
        credentials: &Credentials,
    ) -> Result<CredentialsRef, Fault> {
        let value = credentials.to_secret_string();
        let tags = [(REQUESTER_TAG, grant.requester()), (GRANT_ID_TAG, grant.grant_id())];
        match location {
            CredentialsRef::Secret(name) => self.put_secret(name, value, &tags).await.map(CredentialsRef::Secret),
            CredentialsRef::Parameter(name) => {
                self.put_parameter(name, value, &tags).await?;
                Ok(location.clone())
            }
        }
    }

    /// Deletes what `location` names, at once (no recovery window). Already gone is success.
    pub async fn delete(&self, location: &CredentialsRef) -> Result<(), Fault> {
        match location {
            CredentialsRef::Secret(id) => {
                let deleted =
                    self.secrets().delete_secret().secret_id(id).force_delete_without_recovery(true).send().await;
                match deleted {
                    Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => Ok(()),
                    other => other.map(drop).map_err(|e| secrets_fault("DeleteSecret", e)),
                }
            }
            CredentialsRef::Parameter(name) => match self.parameters().delete_parameter().name(name).send().await {
                Err(e) if e.as_service_error().is_some_and(|e| e.is_parameter_not_found()) => Ok(()),
                other => other.map(drop).map_err(|e| ssm_fault("DeleteParameter", e)),
            },
        }
    }

    async fn put_secret(&self, name: &str, value: String, tags: &[(&str, &str)]) -> Result<String, Fault> {
        if name.starts_with("arn:") {
            // An active grant's secret, named by its ARN: a retried grant's new value.
            let put = self.secrets().put_secret_value().secret_id(name).secret_string(value).send().await;
            let arn = put.map_err(|e| secrets_fault("PutSecretValue", e))?.arn;
            return Ok(arn.unwrap_or_else(|| name.to_string()));
        }
        let mut create = self.secrets().create_secret().name(name).secret_string(value.clone());
        for (key, tag) in tags {
            create = create.tags(aws_sdk_secretsmanager::types::Tag::builder().key(*key).value(*tag).build());
        }
        let arn = match create.send().await {
            Ok(created) => created.arn,
            // A retried grant: the same secret, a new value.
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_exists_exception()) => {
                let put = self.secrets().put_secret_value().secret_id(name).secret_string(value).send().await;
                put.map_err(|e| secrets_fault("PutSecretValue", e))?.arn
            }
            Err(e) => return Err(secrets_fault("CreateSecret", e)),
        };
        arn.ok_or_else(|| Fault::Aws { service: "Secrets Manager", message: format!("no ARN returned for {name}") })
    }

    async fn put_parameter(&self, name: &str, value: String, tags: &[(&str, &str)]) -> Result<(), Fault> {
        use aws_sdk_ssm::types::{ParameterType, Tag};
        let mut create =
            self.parameters().put_parameter().name(name).value(value.clone()).r#type(ParameterType::SecureString);
        for (key, tag) in tags {
            let tag = Tag::builder().key(*key).value(*tag).build();
            let tag = tag.map_err(|e| Fault::Aws { service: "SSM", message: format!("tag {key}: {e}") })?;
            create = create.tags(tag);
        }
        match create.send().await {
            Ok(_) => Ok(()),
            // SSM takes no tags with an overwrite: the first write set them.
            Err(e) if e.as_service_error().is_some_and(|e| e.is_parameter_already_exists()) => {
                let parameters = self.parameters().put_parameter().name(name).value(value);
                let overwrite = parameters.r#type(ParameterType::SecureString).overwrite(true).send().await;
                overwrite.map(drop).map_err(|e| ssm_fault("PutParameter", e))
            }
            Err(e) => Err(ssm_fault("PutParameter", e)),
        }
    }

    fn secrets(&self) -> &aws_sdk_secretsmanager::Client {
        self.secrets.get_or_init(|| aws_sdk_secretsmanager::Client::new(&self.sdk))
    }

    fn parameters(&self) -> &aws_sdk_ssm::Client {
        self.parameters.get_or_init(|| aws_sdk_ssm::Client::new(&self.sdk))
    }
}

/// The service's code and message only: the request (with the secret value) is never part of it.
fn secrets_fault(operation: &str, error: impl ProvideErrorMetadata + std::error::Error) -> Fault {
    Fault::Aws { service: "Secrets Manager", message: format!("{operation}: {}", describe(&error)) }
}

fn ssm_fault(operation: &str, error: impl ProvideErrorMetadata + std::error::Error) -> Fault {
    Fault::Aws { service: "SSM", message: format!("{operation}: {}", describe(&error)) }
}

fn describe(error: &(impl ProvideErrorMetadata + std::error::Error)) -> String {
    match (error.code(), error.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        _ => DisplayErrorContext(error).to_string(),
    }
}
