//! `check` (behind `redoubt-server check-rdb`) refuses exactly what loading refuses, here a key
//! that appears twice in one database, and accepts the same key in two databases.

use persist::disk::OsDisk;
use store::Keyspace;

fn file(dir: &std::path::Path, dbs: [u64; 2]) -> std::path::PathBuf {
    let mut w = rdb::FileWriter::new(Vec::new(), 11).expect("header");
    let opts = rdb::WriteOptions::default();
    for db in dbs {
        w.select_db(db).expect("select");
        w.key_value(b"k", &rdb::Value::String(b"v".to_vec()), None, &opts).expect("key");
    }
    let path = dir.join(format!("dump-{}-{}.rdb", dbs[0], dbs[1]));
    std::fs::write(&path, w.finish().expect("finish")).expect("write");
    path
}

#[test]
fn check_and_load_agree_on_repeated_keys() {
    let dir = std::env::temp_dir().join(format!("persist-check-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let settings = commands::Settings::default();
    let twice = file(&dir, [0, 0]);
    let (report, error) = persist::load::check(&OsDisk, &twice, 0);
    assert!(error.expect("refused").to_string().contains("appears twice in database 0"));
    assert_eq!(report.keys.get(&0), Some(&1));
    let loaded = persist::load::load(&OsDisk, &twice, &Keyspace::new(2), &settings, 0, |_, _| {});
    assert!(loaded.expect_err("refused").to_string().contains("appears twice in database 0"));
    let apart = file(&dir, [0, 1]);
    let (report, error) = persist::load::check(&OsDisk, &apart, 0);
    assert!(error.is_none(), "{error:?}");
    assert_eq!(report.keys.values().sum::<u64>(), 2);
    let loaded = persist::load::load(&OsDisk, &apart, &Keyspace::new(2), &settings, 0, |_, _| {});
    assert_eq!(loaded.expect("loads").expect("a file").keys, 2);
    let _ = std::fs::remove_dir_all(&dir);
}
