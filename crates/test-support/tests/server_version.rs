//! The server the clusters of this process run: printed (the matrix shows it), and of the major
//! `JIT_TEST_PG_MAJOR` asks for, so a matrix run cannot silently test the default server.

use test_support::{requested_major, PgCluster, MAJOR_VAR};

#[tokio::test]
async fn clusters_run_the_requested_major() {
    let pg = PgCluster::start();
    let client = pg.superuser("postgres").await;
    let version: String = client.query_one("SELECT version()", &[]).await.unwrap().get(0);
    let number: String = client.query_one("SHOW server_version_num", &[]).await.unwrap().get(0);
    println!("server: {version}");
    if let Some(major) = requested_major() {
        let actual = number.parse::<u32>().expect("server_version_num is a number") / 10_000;
        assert_eq!(actual, major, "{MAJOR_VAR}={major}, but the cluster runs {version}");
    }
}
