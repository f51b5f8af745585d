//! Versioned schema migrations. `PRAGMA user_version` records how many of [`MIGRATIONS`] have
//! run; each runs in its own transaction with the version bump, so a crash mid-migration
//! leaves the previous version intact. Migrations are append-only: never edit a shipped one.

use rusqlite::Connection;

use crate::{StoreError, StoreResult};

pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: accounts, credentials, key pairs, tags and the resource registry.
    r#"
    CREATE TABLE accounts (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        created_at  INTEGER NOT NULL
    );
    CREATE TABLE access_keys (
        access_key_id     TEXT PRIMARY KEY,
        secret_access_key TEXT NOT NULL,
        account_id        TEXT NOT NULL REFERENCES accounts(id),
        created_at        INTEGER NOT NULL
    );
    CREATE INDEX access_keys_by_account ON access_keys(account_id);

    -- Every taggable resource of every kind, so tags and ids can be checked generically.
    CREATE TABLE resources (
        id          TEXT PRIMARY KEY,
        account_id  TEXT NOT NULL REFERENCES accounts(id),
        kind        TEXT NOT NULL,
        created_at  INTEGER NOT NULL
    );
    CREATE INDEX resources_by_account ON resources(account_id, kind, id);

    CREATE TABLE key_pairs (
        id           TEXT PRIMARY KEY REFERENCES resources(id) ON DELETE CASCADE,
        account_id   TEXT NOT NULL,
        name         TEXT NOT NULL,
        fingerprint  TEXT NOT NULL,
        key_type     TEXT NOT NULL,
        public_key   TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        UNIQUE (account_id, name)
    );

    CREATE TABLE tags (
        resource_id  TEXT NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
        account_id   TEXT NOT NULL,
        key          TEXT NOT NULL,
        value        TEXT NOT NULL,
        PRIMARY KEY (resource_id, key)
    );
    CREATE INDEX tags_by_account ON tags(account_id, resource_id, key);
    "#,
    // 2: images, VPCs and subnets, instances.
    r#"
    CREATE TABLE images (
        id                 TEXT PRIMARY KEY REFERENCES resources(id) ON DELETE CASCADE,
        account_id         TEXT NOT NULL,
        name               TEXT NOT NULL,
        description        TEXT NOT NULL,
        state              TEXT NOT NULL,
        state_reason       TEXT,
        public             INTEGER NOT NULL DEFAULT 0,
        owner_alias        TEXT,
        login_user         TEXT NOT NULL,
        root_size_gib      INTEGER NOT NULL,
        rootfs             TEXT,
        source             TEXT NOT NULL,
        source_instance_id TEXT,
        source_image_id    TEXT,
        created_at         INTEGER NOT NULL,
        UNIQUE (account_id, name)
    );
    CREATE TABLE image_launch_permissions (
        image_id    TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        account_id  TEXT NOT NULL,
        PRIMARY KEY (image_id, account_id)
    );

    CREATE TABLE vpcs (
        id          TEXT PRIMARY KEY REFERENCES resources(id) ON DELETE CASCADE,
        account_id  TEXT NOT NULL,
        cidr        TEXT NOT NULL,
        is_default  INTEGER NOT NULL,
        created_at  INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX one_default_vpc ON vpcs(account_id) WHERE is_default = 1;
    CREATE TABLE subnets (
        id              TEXT PRIMARY KEY REFERENCES resources(id) ON DELETE CASCADE,
        account_id      TEXT NOT NULL,
        vpc_id          TEXT NOT NULL REFERENCES vpcs(id),
        cidr            TEXT NOT NULL,
        az              TEXT NOT NULL,
        az_id           TEXT NOT NULL,
        default_for_az  INTEGER NOT NULL,
        map_public_ip   INTEGER NOT NULL,
        created_at      INTEGER NOT NULL
    );

    CREATE TABLE instances (
        id                      TEXT PRIMARY KEY REFERENCES resources(id) ON DELETE CASCADE,
        account_id              TEXT NOT NULL,
        reservation_id          TEXT NOT NULL,
        image_id                TEXT NOT NULL,
        rootfs                  TEXT NOT NULL,
        instance_type           TEXT NOT NULL,
        key_name                TEXT,
        public_key              TEXT,
        login_user              TEXT NOT NULL,
        state                   TEXT NOT NULL,
        generation              INTEGER NOT NULL DEFAULT 0,
        state_since             INTEGER NOT NULL,
        transition_reason       TEXT NOT NULL DEFAULT '',
        reason_code             TEXT,
        reason_message          TEXT,
        launch_time             INTEGER NOT NULL,
        launch_index            INTEGER NOT NULL,
        subnet_id               TEXT NOT NULL,
        vpc_id                  TEXT NOT NULL,
        az                      TEXT NOT NULL,
        private_ip              TEXT NOT NULL,
        mac                     TEXT NOT NULL,
        eni_id                  TEXT NOT NULL,
        root_volume_id          TEXT NOT NULL,
        root_volume_gib         INTEGER NOT NULL,
        delete_on_termination   INTEGER NOT NULL,
        shutdown_behavior       TEXT NOT NULL,
        disable_api_termination INTEGER NOT NULL,
        user_data               BLOB,
        client_token            TEXT,
        request_hash            TEXT,
        hypervisor              TEXT NOT NULL,
        md_http_tokens          TEXT NOT NULL,
        md_http_endpoint        TEXT NOT NULL,
        md_hop_limit            INTEGER NOT NULL,
        reboot_requested        INTEGER NOT NULL DEFAULT 0,
        force_stop              INTEGER NOT NULL DEFAULT 0,
        first_boot_done         INTEGER NOT NULL DEFAULT 0,
        ended_at                INTEGER
    );
    CREATE INDEX instances_by_account ON instances(account_id, id);
    -- Private addresses are unique host-wide among live instances (default VPCs share one
    -- address space on the host; see ARCHITECTURE.md).
    CREATE UNIQUE INDEX instances_ip_in_use ON instances(private_ip) WHERE state != 'terminated';
    CREATE UNIQUE INDEX instances_client_token
        ON instances(account_id, client_token, launch_index) WHERE client_token IS NOT NULL;
    "#,
    // 3: security groups, their rules, and which instances are in which groups.
    r#"
    CREATE TABLE security_groups (
        id          TEXT PRIMARY KEY REFERENCES resources(id) ON DELETE CASCADE,
        account_id  TEXT NOT NULL,
        vpc_id      TEXT NOT NULL,
        name        TEXT NOT NULL,
        description TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        UNIQUE (vpc_id, name)
    );
    CREATE TABLE security_group_rules (
        id              TEXT PRIMARY KEY REFERENCES resources(id) ON DELETE CASCADE,
        group_id        TEXT NOT NULL REFERENCES security_groups(id) ON DELETE CASCADE,
        account_id      TEXT NOT NULL,
        is_egress       INTEGER NOT NULL,
        protocol        TEXT NOT NULL,
        from_port       INTEGER,
        to_port         INTEGER,
        cidr_ipv4       TEXT,
        cidr_ipv6       TEXT,
        ref_group_id    TEXT,
        description     TEXT,
        created_at      INTEGER NOT NULL
    );
    CREATE INDEX sg_rules_by_group ON security_group_rules(group_id);
    CREATE TABLE instance_security_groups (
        instance_id TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
        group_id    TEXT NOT NULL,
        position    INTEGER NOT NULL,
        PRIMARY KEY (instance_id, group_id)
    );
    CREATE INDEX instance_sg_by_group ON instance_security_groups(group_id);
    CREATE INDEX key_pairs_by_account ON key_pairs(account_id, id);
    -- The auto-assigned public address, while the instance has one (released on stop).
    ALTER TABLE instances ADD COLUMN public_ip TEXT;
    CREATE UNIQUE INDEX instances_public_ip ON instances(public_ip) WHERE public_ip IS NOT NULL;
    "#,
    // 4: Elastic IPs, internet gateways, route tables; per-instance public-IP choice.
    r#"
    -- Whether the instance gets an auto-assigned public address (subnet's MapPublicIpOnLaunch
    -- or the launch's AssociatePublicIpAddress).
    ALTER TABLE instances ADD COLUMN auto_public_ip INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE subnets ADD COLUMN state TEXT NOT NULL DEFAULT 'available';
    ALTER TABLE vpcs ADD COLUMN dns_support INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE vpcs ADD COLUMN dns_hostnames INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE addresses (
        allocation_id   TEXT PRIMARY KEY REFERENCES resources(id) ON DELETE CASCADE,
        account_id      TEXT NOT NULL,
        public_ip       TEXT NOT NULL UNIQUE,
        instance_id     TEXT,
        association_id  TEXT UNIQUE,
        created_at      INTEGER NOT NULL
    );
    CREATE INDEX addresses_by_account ON addresses(account_id, allocation_id);
    CREATE UNIQUE INDEX addresses_by_instance ON addresses(instance_id) WHERE instance_id IS NOT NULL;
    CREATE TABLE internet_gateways (
        id          TEXT PRIMARY KEY REFERENCES resources(id) ON DELETE CASCADE,
        account_id  TEXT NOT NULL,
        vpc_id      TEXT,
        created_at  INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX igw_by_vpc ON internet_gateways(vpc_id) WHERE vpc_id IS NOT NULL;
    CREATE TABLE route_tables (
        id          TEXT PRIMARY KEY REFERENCES resources(id) ON DELETE CASCADE,
        account_id  TEXT NOT NULL,
        vpc_id      TEXT NOT NULL,
        is_main     INTEGER NOT NULL,
        created_at  INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX main_route_table ON route_tables(vpc_id) WHERE is_main;
    -- The non-local routes (the local route of the VPC's CIDR is implied).
    CREATE TABLE routes (
        route_table_id  TEXT NOT NULL REFERENCES route_tables(id) ON DELETE CASCADE,
        destination     TEXT NOT NULL,
        gateway_id      TEXT NOT NULL,
        PRIMARY KEY (route_table_id, destination)
    );
    -- Explicit subnet associations (a subnet without one uses its VPC's main table).
    CREATE TABLE route_table_associations (
        id              TEXT PRIMARY KEY,
        route_table_id  TEXT NOT NULL REFERENCES route_tables(id) ON DELETE CASCADE,
        subnet_id       TEXT NOT NULL UNIQUE
    );
    "#,
    // 5: metering. One row per billable interval, opened and closed in the transaction of the
    // state change that causes it.
    r#"
    CREATE TABLE usage (
        id           INTEGER PRIMARY KEY,
        account_id   TEXT NOT NULL,
        resource_id  TEXT NOT NULL,
        -- compute | storage | public-ipv4 | elastic-ip
        kind         TEXT NOT NULL,
        -- compute: the instance type; storage: the volume type; public-ipv4: the address;
        -- elastic-ip: in-use or idle.
        detail       TEXT NOT NULL,
        -- storage: GiB; otherwise 1.
        quantity     REAL NOT NULL,
        start_ms     INTEGER NOT NULL,
        end_ms       INTEGER
    );
    CREATE INDEX usage_by_account ON usage(account_id, start_ms);
    CREATE UNIQUE INDEX usage_open ON usage(resource_id, kind) WHERE end_ms IS NULL;
    "#,
    // 6: console sign-in passwords (argon2 PHC strings), one per account.
    r#"
    CREATE TABLE console_passwords (
        account_id  TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
        hash        TEXT NOT NULL,
        updated_at  INTEGER NOT NULL
    );
    "#,
    // VPC API: tenancy, the main route table's association id, and whether a default VPC has
    // been given its internet gateway and 0.0.0.0/0 route (default VPCs made before this were
    // not; they are repaired once, so a gateway the user detaches later stays detached).
    r#"
    ALTER TABLE vpcs ADD COLUMN instance_tenancy TEXT NOT NULL DEFAULT 'default';
    ALTER TABLE vpcs ADD COLUMN internet_ready INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE route_tables ADD COLUMN main_association_id TEXT;
    CREATE INDEX subnets_by_vpc ON subnets(vpc_id);
    CREATE INDEX route_tables_by_account ON route_tables(account_id, id);
    CREATE INDEX igws_by_account ON internet_gateways(account_id, id);
    "#,
    // 8: monthly budgets per account, and the alerts they raised.
    r#"
    CREATE TABLE budgets (
        account_id      TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
        limit_usd       TEXT NOT NULL,
        stop_instances  INTEGER NOT NULL,
        -- The last alert: its month (YYYY-MM), what crossed (actual or forecast), when, and
        -- the amount then.
        alert_month     TEXT,
        alert_kind      TEXT,
        alert_at        INTEGER,
        alert_amount    TEXT
    );
    "#,
    // 9: the usage intervals still open or recently ended, found without reading all of them.
    r#"
    CREATE INDEX usage_by_end ON usage(account_id, end_ms);
    "#,
    // 10: EBS volumes and snapshots (see volumes.rs).
    r#"
    CREATE TABLE volumes (
        id                      TEXT PRIMARY KEY REFERENCES resources(id) ON DELETE CASCADE,
        account_id              TEXT NOT NULL,
        az                      TEXT NOT NULL,
        size_gib                INTEGER NOT NULL,
        volume_type             TEXT NOT NULL,
        iops                    INTEGER,
        throughput              INTEGER,
        snapshot_id             TEXT,
        encrypted               INTEGER NOT NULL,
        auto_enable_io          INTEGER NOT NULL,
        state                   TEXT NOT NULL,
        generation              INTEGER NOT NULL DEFAULT 0,
        created_at              INTEGER NOT NULL,
        -- an instance's root volume: its bytes are the compute driver's
        root                    INTEGER NOT NULL,
        instance_id             TEXT,
        device                  TEXT,
        attach_state            TEXT,
        attach_time             INTEGER,
        delete_on_termination   INTEGER NOT NULL,
        force_detach            INTEGER NOT NULL,
        mod_state               TEXT,
        mod_original_size       INTEGER,
        mod_original_type       TEXT,
        mod_original_iops       INTEGER,
        mod_original_throughput INTEGER,
        mod_start               INTEGER,
        mod_end                 INTEGER
    );
    CREATE INDEX volumes_by_account ON volumes(account_id, id);
    -- One volume per device name of an instance.
    CREATE UNIQUE INDEX volumes_device ON volumes(instance_id, device) WHERE instance_id IS NOT NULL;
    CREATE TABLE snapshots (
        id                  TEXT PRIMARY KEY REFERENCES resources(id) ON DELETE CASCADE,
        account_id          TEXT NOT NULL,
        volume_id           TEXT NOT NULL,
        volume_size         INTEGER NOT NULL,
        description         TEXT NOT NULL,
        state               TEXT NOT NULL,
        state_message       TEXT,
        progress            INTEGER NOT NULL,
        encrypted           INTEGER NOT NULL,
        generation          INTEGER NOT NULL DEFAULT 0,
        created_at          INTEGER NOT NULL,
        source_snapshot_id  TEXT
    );
    CREATE INDEX snapshots_by_account ON snapshots(account_id, id);
    -- createVolumePermission: an account id, or 'all'.
    CREATE TABLE snapshot_permissions (
        snapshot_id  TEXT NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
        who          TEXT NOT NULL,
        PRIMARY KEY (snapshot_id, who)
    );
    CREATE INDEX snapshot_permissions_by_who ON snapshot_permissions(who);
    -- Deleted snapshots whose bytes the agent has yet to remove.
    CREATE TABLE ebs_trash (
        id  TEXT PRIMARY KEY
    );
    "#,
    // 11: the EBS block device mappings of images registered from snapshots (an image without
    // rows has the one /dev/xvda root volume every image had before), and the images whose
    // files the agent has yet to remove (see images.rs).
    r#"
    CREATE TABLE image_block_devices (
        image_id               TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        device_name            TEXT NOT NULL,
        root                   INTEGER NOT NULL,
        snapshot_id            TEXT,
        volume_size            INTEGER NOT NULL,
        volume_type            TEXT NOT NULL,
        delete_on_termination  INTEGER NOT NULL,
        PRIMARY KEY (image_id, device_name)
    );
    CREATE INDEX image_block_devices_by_snapshot ON image_block_devices(snapshot_id);
    CREATE TABLE image_trash (
        id      TEXT PRIMARY KEY,
        rootfs  TEXT
    );
    "#,
];

pub(crate) fn migrate(conn: &mut Connection) -> StoreResult<()> {
    let known = MIGRATIONS.len() as i64;
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > known {
        return Err(StoreError::TooNew { found, known });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}
