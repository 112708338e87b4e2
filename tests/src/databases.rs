//! Scratch databases on the local PostgreSQL (127.0.0.1:5432) and MariaDB (127.0.0.1:3306)
//! servers, for restore validation: each test (and the drill) creates its own database,
//! seeds it with a small shop (users and their orders), and drops it afterwards.

use lifeboat::validation::checks::Dialect;
use lifeboat::validation::run::ProbeTarget;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, Connection};
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A database of its own on a local server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScratchDatabase {
    /// PostgreSQL or MariaDB.
    pub dialect: Dialect,
    /// Its name (`lbtest_<pid>_<n>` or the name asked for).
    pub name: String,
}

/// The local servers' administrative users: trust authentication on PostgreSQL (as
/// `postgres`), `root` without a password on MariaDB.
fn user(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Postgres => "postgres",
        Dialect::Mysql => "root",
    }
}

async fn pg(database: &str) -> Result<PgConnection, String> {
    let options = PgConnectOptions::new()
        .host("127.0.0.1")
        .port(5432)
        .username(user(Dialect::Postgres))
        .database(database);
    PgConnection::connect_with(&options)
        .await
        .map_err(|e| format!("local PostgreSQL (127.0.0.1:5432, user postgres): {e}"))
}

async fn mysql(database: Option<&str>) -> Result<MySqlConnection, String> {
    let mut options = MySqlConnectOptions::new()
        .host("127.0.0.1")
        .port(3306)
        .username(user(Dialect::Mysql));
    if let Some(d) = database {
        options = options.database(d);
    }
    MySqlConnection::connect_with(&options)
        .await
        .map_err(|e| format!("local MariaDB (127.0.0.1:3306, user root): {e}"))
}

/// The shop every validation test starts from: 3 users, 4 orders, each order's user present.
const SEED: &[&str] = &[
    "CREATE TABLE users (id INTEGER PRIMARY KEY, email VARCHAR(100) NOT NULL)",
    // No foreign-key constraint: the orphan check must find what a constraint would
    // have prevented (restored data loaded without constraints, or constraints dropped).
    "CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER, total_cents INTEGER NOT NULL)",
    "INSERT INTO users (id, email) VALUES (1, 'ada@example.com'), (2, 'grace@example.com'), (3, 'edsger@example.com')",
    "INSERT INTO orders (id, user_id, total_cents) VALUES (1, 1, 1250), (2, 1, 990), (3, 2, 4500), (4, 3, 120)",
];

impl ScratchDatabase {
    /// Create a fresh, uniquely named database and seed it.
    pub async fn seeded(dialect: Dialect) -> Result<Self, String> {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Self::seeded_named(dialect, &format!("lbtest_{}_{n}", std::process::id())).await
    }

    /// Create (again, if it exists) the database `name` and seed it.
    pub async fn seeded_named(dialect: Dialect, name: &str) -> Result<Self, String> {
        if !lifeboat::plan::is_sql_identifier(name) {
            return Err(format!("{name:?} is not a plain database name"));
        }
        let db = ScratchDatabase {
            dialect,
            name: name.to_string(),
        };
        db.drop_database().await?;
        // The name was checked to be a plain identifier just above.
        db.admin(&format!("CREATE DATABASE {name}")).await?;
        for statement in SEED {
            db.execute(statement).await?;
        }
        Ok(db)
    }

    /// Run a statement on the server, outside the database (roles, users, databases).
    pub async fn admin(&self, sql: &str) -> Result<(), String> {
        let sql = AssertSqlSafe(sql.to_string());
        match self.dialect {
            Dialect::Postgres => {
                let mut c = pg("postgres").await?;
                sqlx::raw_sql(sql)
                    .execute(&mut c)
                    .await
                    .map_err(|e| e.to_string())?;
                let _ = c.close().await;
            }
            Dialect::Mysql => {
                let mut c = mysql(None).await?;
                sqlx::raw_sql(sql)
                    .execute(&mut c)
                    .await
                    .map_err(|e| e.to_string())?;
                let _ = c.close().await;
            }
        }
        Ok(())
    }

    /// Run a statement in the database (to break it in a test's chosen way).
    pub async fn execute(&self, sql: &str) -> Result<(), String> {
        let sql = AssertSqlSafe(sql.to_string());
        let what = |e: sqlx::Error| format!("{}: {e}", self.name);
        match self.dialect {
            Dialect::Postgres => {
                let mut c = pg(&self.name).await?;
                sqlx::raw_sql(sql).execute(&mut c).await.map_err(what)?;
                let _ = c.close().await;
            }
            Dialect::Mysql => {
                let mut c = mysql(Some(&self.name)).await?;
                sqlx::raw_sql(sql).execute(&mut c).await.map_err(what)?;
                let _ = c.close().await;
            }
        }
        Ok(())
    }

    /// One count (a `BIGINT`) read in the database as the administrator.
    pub async fn count(&self, sql: &str) -> Result<i64, String> {
        let sql = AssertSqlSafe(sql.to_string());
        let what = |e: sqlx::Error| format!("{}: {e}", self.name);
        match self.dialect {
            Dialect::Postgres => {
                let mut c = pg(&self.name).await?;
                let n = sqlx::query_scalar(sql)
                    .fetch_one(&mut c)
                    .await
                    .map_err(what)?;
                let _ = c.close().await;
                Ok(n)
            }
            Dialect::Mysql => {
                let mut c = mysql(Some(&self.name)).await?;
                let n = sqlx::query_scalar(sql)
                    .fetch_one(&mut c)
                    .await
                    .map_err(what)?;
                let _ = c.close().await;
                Ok(n)
            }
        }
    }

    /// Run `sql` in the database as `username`, in a plain session (not read-only):
    /// what an application connected as that user could do.
    pub async fn execute_as(
        &self,
        username: &str,
        password: &str,
        sql: &str,
    ) -> Result<(), String> {
        let sql = AssertSqlSafe(sql.to_string());
        let what = |e: sqlx::Error| format!("{} as {username}: {e}", self.name);
        match self.dialect {
            Dialect::Postgres => {
                let options = PgConnectOptions::new()
                    .host("127.0.0.1")
                    .port(5432)
                    .username(username)
                    .password(password)
                    .database(&self.name);
                let mut c = PgConnection::connect_with(&options).await.map_err(what)?;
                let done = sqlx::raw_sql(sql).execute(&mut c).await.map_err(what);
                let _ = c.close().await;
                done.map(|_| ())
            }
            Dialect::Mysql => {
                let options = MySqlConnectOptions::new()
                    .host("127.0.0.1")
                    .port(3306)
                    .username(username)
                    .password(password)
                    .database(&self.name);
                let mut c = MySqlConnection::connect_with(&options)
                    .await
                    .map_err(what)?;
                let done = sqlx::raw_sql(sql).execute(&mut c).await.map_err(what);
                let _ = c.close().await;
                done.map(|_| ())
            }
        }
    }

    /// Drop the database (nothing when it does not exist).
    pub async fn drop_database(&self) -> Result<(), String> {
        let sql = match self.dialect {
            Dialect::Postgres => format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            Dialect::Mysql => format!("DROP DATABASE IF EXISTS {}", self.name),
        };
        self.admin(&sql).await
    }

    /// Its URL, for `LIFEBOAT_LOCAL_DATABASE_URLS` (no password: the local servers need none).
    pub fn url(&self) -> String {
        match self.dialect {
            Dialect::Postgres => format!("postgres://postgres@127.0.0.1:5432/{}", self.name),
            Dialect::Mysql => format!("mysql://root@127.0.0.1:3306/{}", self.name),
        }
    }

    /// The user the secret for this database names.
    pub fn username(&self) -> &'static str {
        user(self.dialect)
    }

    /// Where Lifeboat's probe reaches this database, as its administrator (no TLS on the
    /// local servers).
    pub fn probe_target(&self) -> ProbeTarget {
        self.probe_target_as(self.username(), "")
    }

    /// Where Lifeboat's probe reaches this database, as `username`.
    pub fn probe_target_as(&self, username: &str, password: &str) -> ProbeTarget {
        ProbeTarget {
            dialect: self.dialect,
            host: "127.0.0.1".into(),
            port: match self.dialect {
                Dialect::Postgres => 5432,
                Dialect::Mysql => 3306,
            },
            database: self.name.clone(),
            username: username.into(),
            password: password.into(),
            require_tls: false,
        }
    }
}

/// Store the credentials secret `name` (JSON `username`/`password`) in Secrets Manager,
/// replacing its value when it exists.
pub async fn put_credentials_secret(
    config: &aws_config::SdkConfig,
    name: &str,
    username: &str,
    password: &str,
) -> Result<(), String> {
    let client = aws_sdk_secretsmanager::Client::new(config);
    let value = serde_json::json!({"username": username, "password": password}).to_string();
    match client
        .create_secret()
        .name(name)
        .secret_string(&value)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_exists_exception()) =>
        {
            client
                .put_secret_value()
                .secret_id(name)
                .secret_string(value)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| format!("secret {name}: {e}"))
        }
        Err(e) => Err(format!("secret {name}: {e}")),
    }
}
