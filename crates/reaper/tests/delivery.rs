//! Credentials delivered to Secrets Manager and SSM (issue 12), on moto and a real PostgreSQL: the secret or
//! parameter holds credentials that log in, carries the requester's tags, and is gone once the grant ends, however
//! it ends (revoked, expired, failed, abandoned while pending). The password is in no response, table item or
//! log line; `auth: iam` users get tokens and no password; the admin's password can come from Secrets Manager.

mod common;

use chrono::Duration;
use common::{grant_request, id, s, user, Env, ADMIN_PASSWORD, ADMIN_USER, DB};
use grant_model::grant::{now_seconds, NewGrant};
use grant_model::{naming, CredentialsRef, Grant, Strategy};
use serde_json::{json, Value};

/// An environment whose temp_user targets deliver credentials as `delivery` says.
async fn delivering(delivery: &str) -> Env {
    let env = Env::new().await;
    let mut config = env.config();
    for target in ["readonly", "missing-role"] {
        config["databases"][DB]["targets"][target]["credential_delivery"] = json!(delivery);
    }
    env.put_object("config.json", &config).await;
    env
}

fn secrets(env: &Env) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&env.sdk)
}

fn parameters(env: &Env) -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::new(&env.sdk)
}

/// The secret's value, or None if it does not exist.
async fn secret_value(env: &Env, id: &str) -> Option<Value> {
    match secrets(env).get_secret_value().secret_id(id).send().await {
        Ok(output) => Some(serde_json::from_str(output.secret_string().unwrap()).unwrap()),
        Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => None,
        Err(e) => panic!("GetSecretValue {id}: {e:?}"),
    }
}

/// The parameter's decrypted value and type, or None if it does not exist.
async fn parameter_value(env: &Env, name: &str) -> Option<(Value, String)> {
    match parameters(env).get_parameter().name(name).with_decryption(true).send().await {
        Ok(output) => {
            let parameter = output.parameter.unwrap();
            let kind = parameter.r#type().unwrap().as_str().to_string();
            Some((serde_json::from_str(parameter.value().unwrap()).unwrap(), kind))
        }
        Err(e) if e.as_service_error().is_some_and(|e| e.is_parameter_not_found()) => None,
        Err(e) => panic!("GetParameter {name}: {e:?}"),
    }
}

async fn logs_in(env: &Env, credentials: &Value) -> bool {
    let (user, password) = (credentials["username"].as_str().unwrap(), credentials["password"].as_str().unwrap());
    match env.pg.connect(user, password, DB).await {
        Ok(client) => client.query_one("SELECT name FROM items", &[]).await.is_ok(),
        Err(_) => false,
    }
}

async fn call(env: &Env, request: Value) -> Value {
    env.provisioner.handle(request.clone()).await.unwrap_or_else(|f| panic!("{request}: fault {f}"))
}

#[tokio::test]
async fn a_delivered_secret_works_is_tagged_and_goes_with_a_revoke() {
    let env = delivering("secrets_manager").await;
    let mut request = grant_request("alice@example.com", "readonly");
    request["request_id"] = json!("delivery-1");
    let granted = call(&env, request.clone()).await;
    assert_eq!(granted["ok"], json!(true), "{granted}");
    let answer = &granted["credentials"];
    assert!(answer.get("password").is_none(), "no password in the response: {answer}");
    assert_eq!(answer["username"], granted["grant"]["db_user"]);
    let arn = answer["secret_arn"].as_str().unwrap().to_string();

    let stored = secret_value(&env, &arn).await.expect("the secret exists");
    assert_eq!(stored["username"], answer["username"]);
    assert_eq!(
        (&stored["host"], &stored["dbname"], &stored["sslmode"]),
        (&answer["host"], &json!(DB), &json!("disable"))
    );
    assert!(logs_in(&env, &stored).await, "the delivered credentials log in");
    let password = stored["password"].as_str().unwrap().to_string();

    let described = secrets(&env).describe_secret().secret_id(&arn).send().await.unwrap();
    assert_eq!(described.name(), Some(format!("jit-access/{DB}/{}", id(&granted)).as_str()));
    let tags: Vec<(String, String)> =
        described.tags().iter().map(|t| (t.key().unwrap().into(), t.value().unwrap().into())).collect();
    assert!(tags.contains(&("jit:requester".into(), "alice@example.com".into())), "{tags:?}");
    assert!(tags.contains(&("jit:grant_id".into(), id(&granted))), "{tags:?}");
    assert_eq!(s(&env.item(&id(&granted)).await, "credentials_ref"), arn, "the item names the secret");

    // A retry puts a new value in the same secret; the old password stops working.
    let retried = call(&env, request).await;
    assert_eq!(retried["credentials"]["secret_arn"], json!(arn), "{retried}");
    let renewed = secret_value(&env, &arn).await.unwrap();
    assert_ne!(renewed["password"], stored["password"]);
    assert!(logs_in(&env, &renewed).await && !logs_in(&env, &stored).await);
    let passwords = [password, renewed["password"].as_str().unwrap().to_string()];

    let revoked =
        call(&env, json!({"action": "revoke", "grant_id": id(&granted), "actor": "bob@example.com", "reason": "done"}))
            .await;
    assert_eq!(revoked["ok"], json!(true), "{revoked}");
    assert_eq!(secret_value(&env, &arn).await, None, "the secret is gone after the revoke");
    assert!(!logs_in(&env, &renewed).await);

    let table = format!("{:?}", env.items().await);
    for password in &passwords {
        for text in [&granted.to_string(), &retried.to_string(), &revoked.to_string(), &table] {
            assert!(!text.contains(password.as_str()), "the password leaked: {text}");
        }
    }
}

#[tokio::test]
async fn a_delivered_parameter_is_a_secure_string_and_goes_when_the_grant_expires() {
    let env = delivering("ssm").await;
    let granted = env.grant("carol@example.com", "readonly", None).await;
    let answer = &granted["credentials"];
    let name = format!("/jit-access/{DB}/{}", id(&granted));
    assert_eq!(answer["parameter_name"], json!(name), "{answer}");
    assert!(answer.get("password").is_none(), "{answer}");
    let (stored, kind) = parameter_value(&env, &name).await.expect("the parameter exists");
    assert_eq!(kind, "SecureString");
    assert!(logs_in(&env, &stored).await, "the delivered credentials log in");
    let listed = parameters(&env)
        .list_tags_for_resource()
        .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Parameter)
        .resource_id(&name)
        .send()
        .await
        .unwrap();
    let tags: Vec<(&str, &str)> = listed.tag_list().iter().map(|t| (t.key(), t.value())).collect();
    assert!(tags.contains(&("jit:requester", "carol@example.com")), "{tags:?}");
    assert!(tags.contains(&("jit:grant_id", id(&granted).as_str())), "{tags:?}");
    assert_eq!(s(&env.item(&id(&granted)).await, "credentials_ref"), name);

    env.expire(&id(&granted), 600).await;
    let summary = env.pass().await;
    assert_eq!(summary.revoked, 1, "{summary:?}");
    assert_eq!(parameter_value(&env, &name).await, None, "the parameter is gone after expiry");
    assert!(!env.marked_users().await.contains(&user(&granted)));
}

#[tokio::test]
async fn a_failed_grant_leaves_no_secret_behind() {
    let env = delivering("secrets_manager").await;
    let mut request = grant_request("dave@example.com", "missing-role");
    request["request_id"] = json!("delivery-fails");
    let grant_id = naming::grant_id_for_request("delivery-fails");
    // What an earlier attempt could have left under the grant's name before it failed.
    let name = format!("jit-access/{DB}/{grant_id}");
    secrets(&env).create_secret().name(&name).secret_string("{}").send().await.unwrap();

    let fault = env.provisioner.handle(request).await.expect_err("a missing role is a config fault");
    assert_eq!(fault.kind(), "Config", "{fault}");
    assert_eq!(s(&env.item(&grant_id).await, "status"), "failed");
    assert_eq!(secret_value(&env, &name).await, None, "the failed grant's secret is gone");
}

/// A pending grant (written `age` seconds ago, delivering to `location`) whose provisioner died after creating
/// the user and writing the credentials, before recording `active`.
async fn abandoned(env: &Env, location: &CredentialsRef) -> Grant {
    let db_user = naming::temp_username("jit_", "crash@example.com");
    let pending = Grant::new_pending(
        NewGrant {
            grant_id: location.as_str().rsplit('/').next().unwrap().to_string(),
            request_id: None,
            requester: "crash@example.com".into(),
            approver: None,
            reason: "crash test".into(),
            database: DB.into(),
            target: "readonly".into(),
            strategy: Strategy::TempUser,
            db_user: db_user.clone(),
            roles: vec!["readonly".into()],
            duration_seconds: 3600,
            user_prefix: "jit_".into(),
            break_glass: false,
        },
        now_seconds() - Duration::seconds(3600),
    )
    .delivered_to(Some(location));
    assert!(env.store().insert(&pending).await.unwrap());
    let admin = env.pg.connect(ADMIN_USER, ADMIN_PASSWORD, DB).await.unwrap();
    admin
        .batch_execute(&format!("CREATE ROLE {db_user} LOGIN PASSWORD 'x' IN ROLE readonly, jit_managed"))
        .await
        .unwrap();
    pending
}

#[tokio::test]
async fn an_abandoned_pending_grant_loses_its_secret_and_its_parameter() {
    let env = Env::new().await;
    env.orders().await.batch_execute("CREATE ROLE jit_managed NOLOGIN").await.unwrap();
    let secret = CredentialsRef::Secret(format!("jit-access/{DB}/{}", uuid::Uuid::new_v4()));
    let parameter = CredentialsRef::Parameter(format!("/jit-access/{DB}/{}", uuid::Uuid::new_v4()));
    let grants = [abandoned(&env, &secret).await, abandoned(&env, &parameter).await];
    secrets(&env).create_secret().name(secret.as_str()).secret_string("{}").send().await.unwrap();
    let put = parameters(&env).put_parameter().name(parameter.as_str()).value("{}");
    put.r#type(aws_sdk_ssm::types::ParameterType::SecureString).send().await.unwrap();

    env.pass().await;
    for grant in &grants {
        assert_eq!(s(&env.item(grant.grant_id()).await, "status"), "failed");
        assert!(!env.marked_users().await.contains(&grant.db_user().to_string()));
    }
    assert_eq!(secret_value(&env, secret.as_str()).await, None, "the abandoned grant's secret is gone");
    assert_eq!(parameter_value(&env, parameter.as_str()).await, None, "the abandoned grant's parameter is gone");
}

#[tokio::test]
async fn iam_users_get_a_fresh_token_and_no_password() {
    let env = Env::new().await;
    // Locally there is no IAM: the role RDS authenticates by token is an ordinary NOLOGIN role.
    let orders = env.orders().await;
    orders.batch_execute("CREATE ROLE rds_iam NOLOGIN; GRANT rds_iam TO jit_admin WITH ADMIN OPTION").await.unwrap();
    let mut config = env.config();
    config["databases"][DB]["targets"]["readonly"]["auth"] = json!("iam");
    env.put_object("config.json", &config).await;

    let mut request = grant_request("erin@example.com", "readonly");
    request["request_id"] = json!("iam-1");
    let granted = call(&env, request.clone()).await;
    assert_eq!(granted["ok"], json!(true), "{granted}");
    let username = user(&granted);
    let answer = &granted["credentials"];
    assert_eq!(answer["auth"], json!("iam"));
    assert!(answer.get("password").is_none(), "{answer}");
    let token = answer["token"].as_str().unwrap().to_string();
    let prefix =
        format!("127.0.0.1:{}/?Action=connect&DBUser={username}&X-Amz-Algorithm=AWS4-HMAC-SHA256&", env.pg.port());
    assert!(token.starts_with(&prefix), "{token}");
    assert!(
        token.contains("%2Fus-east-1%2Frds-db%2Faws4_request&") && token.contains("&X-Amz-Expires=900&"),
        "{token}"
    );
    assert!(token.contains("&X-Amz-Signature="), "{token}");

    let row = orders
        .query_one("SELECT rolpassword IS NULL, rolcanlogin FROM pg_authid WHERE rolname = $1", &[&username])
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0) && row.get::<_, bool>(1), "a login role without a password");
    assert_eq!(env.memberships(&username).await, ["jit_managed", "rds_iam", "readonly"]);

    tokio::time::sleep(std::time::Duration::from_millis(1100)).await; // tokens are signed to the second
    let retried = call(&env, request).await;
    assert_eq!(user(&retried), username);
    assert_ne!(retried["credentials"]["token"], json!(token), "a retry mints a fresh token");
    let table = format!("{:?}", env.items().await);
    assert!(!table.contains("X-Amz-Signature"), "no token in the table");

    env.expire(&id(&granted), 600).await;
    assert_eq!(env.pass().await.revoked, 1);
    assert!(!env.marked_users().await.contains(&username), "the reaper drops IAM users too");
}

#[tokio::test]
async fn the_admin_password_can_come_from_secrets_manager() {
    let env = Env::new().await;
    let created = secrets(&env)
        .create_secret()
        .name("rds!cluster-orders")
        // The shape of an RDS-managed master user secret.
        .secret_string(json!({"username": ADMIN_USER, "password": ADMIN_PASSWORD, "engine": "postgres"}).to_string())
        .send()
        .await
        .unwrap();
    let mut config = env.config();
    let db = config["databases"][DB].as_object_mut().unwrap();
    db.remove("admin_secret_key");
    db.insert("admin_secret_arn".into(), json!(created.arn().unwrap()));
    env.put_object("config.json", &config).await;
    env.put_object("secrets/orders-admin.json", &json!({"username": ADMIN_USER, "password": "wrong"})).await;

    let granted = env.grant("frank@example.com", "readonly", None).await;
    assert!(env.marked_users().await.contains(&user(&granted)), "granted with the admin from Secrets Manager");
}
