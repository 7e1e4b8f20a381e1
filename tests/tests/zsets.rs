//! Sorted-set behaviour of Redis 7.2 that the reference redis-server (7.0) cannot show, so
//! these expectations come from Redis 7.2's documentation and source: ZRANK/ZREVRANK
//! WITHSCORE, the shortest round-trip double format in replies, `%.17g` scores in ZSCAN of
//! skiplist-encoded sets, and the ZADD encoding choice by pair count.

use redoubt_tests::util::cmd;
use redoubt_tests::Server;

#[test]
fn rank_with_score() {
    let server = Server::redoubt();
    let mut c = server.conn();
    cmd(&mut c, &["ZADD", "z", "1", "one", "2", "two", "3.5", "three"]);
    assert_eq!(cmd(&mut c, &["ZRANK", "z", "three", "WITHSCORE"]), "*2\r\n:2\r\n$3\r\n3.5\r\n");
    assert_eq!(cmd(&mut c, &["ZREVRANK", "z", "three", "withscore"]), "*2\r\n:0\r\n$3\r\n3.5\r\n");
    assert_eq!(cmd(&mut c, &["ZRANK", "z", "nope", "WITHSCORE"]), "*-1\r\n");
    assert_eq!(cmd(&mut c, &["ZRANK", "missing", "a", "WITHSCORE"]), "*-1\r\n");
    assert_eq!(cmd(&mut c, &["ZRANK", "z", "one"]), ":0\r\n");
    assert_eq!(cmd(&mut c, &["ZRANK", "z", "one", "WITHSCORES"]), "-ERR syntax error\r\n");
    assert_eq!(
        cmd(&mut c, &["ZRANK", "z", "one", "WITHSCORE", "x"]),
        "-ERR wrong number of arguments for 'zrank' command\r\n"
    );
    cmd(&mut c, &["HELLO", "3"]);
    assert_eq!(cmd(&mut c, &["ZRANK", "z", "two", "WITHSCORE"]), "*2\r\n:1\r\n,2\r\n");
    assert_eq!(cmd(&mut c, &["ZRANK", "z", "nope", "WITHSCORE"]), "_\r\n");
    // On a skiplist too: ranks come from the order-statistics tree.
    let pairs: Vec<String> = (0..1000).flat_map(|i| [i.to_string(), format!("m{i}")]).collect();
    let mut args = vec!["ZADD".to_string(), "big".to_string()];
    args.extend(pairs);
    c.cmd(&args).unwrap();
    assert_eq!(cmd(&mut c, &["ZREVRANK", "big", "m10", "WITHSCORE"]), "*2\r\n:989\r\n,10\r\n");
}

#[test]
fn doubles_use_the_shortest_form() {
    let server = Server::redoubt();
    let mut c = server.conn();
    cmd(&mut c, &["ZADD", "z", "0.1", "a"]);
    assert_eq!(cmd(&mut c, &["ZSCORE", "z", "a"]), "$3\r\n0.1\r\n");
    assert_eq!(cmd(&mut c, &["ZINCRBY", "z", "0.2", "a"]), "$19\r\n0.30000000000000004\r\n");
    assert_eq!(cmd(&mut c, &["ZADD", "z", "1e21", "b"]), ":1\r\n");
    assert_eq!(
        cmd(&mut c, &["ZRANGE", "z", "0", "-1", "WITHSCORES"]),
        "*4\r\n$1\r\na\r\n$19\r\n0.30000000000000004\r\n$1\r\nb\r\n$5\r\n1e+21\r\n"
    );
    cmd(&mut c, &["HELLO", "3"]);
    assert_eq!(cmd(&mut c, &["ZMSCORE", "z", "a", "nope"]), "*2\r\n,0.30000000000000004\r\n_\r\n");
}

#[test]
fn zscan_formats_scores_per_encoding() {
    let server = Server::redoubt();
    let mut c = server.conn();
    cmd(&mut c, &["ZADD", "small", "0.1", "a"]);
    assert_eq!(cmd(&mut c, &["OBJECT", "ENCODING", "small"]), "$8\r\nlistpack\r\n");
    assert_eq!(cmd(&mut c, &["ZSCAN", "small", "0"]), "*2\r\n$1\r\n0\r\n*2\r\n$1\r\na\r\n$3\r\n0.1\r\n");
    cmd(&mut c, &["CONFIG", "SET", "zset-max-listpack-entries", "0"]);
    cmd(&mut c, &["ZADD", "large", "0.1", "a"]);
    assert_eq!(cmd(&mut c, &["OBJECT", "ENCODING", "large"]), "$8\r\nskiplist\r\n");
    assert_eq!(
        cmd(&mut c, &["ZSCAN", "large", "0"]),
        "*2\r\n$1\r\n0\r\n*2\r\n$1\r\na\r\n$19\r\n0.10000000000000001\r\n"
    );
}

#[test]
fn zadd_picks_the_encoding_by_pair_count() {
    let server = Server::redoubt();
    let mut c = server.conn();
    // 129 pairs naming one member: Redis 7.2 sizes the new set by the pairs it was given.
    let mut args = vec!["ZADD".to_string(), "z".to_string()];
    for i in 0..129 {
        args.push(i.to_string());
        args.push("same".to_string());
    }
    c.cmd(&args).unwrap();
    assert_eq!(cmd(&mut c, &["ZCARD", "z"]), ":1\r\n");
    assert_eq!(cmd(&mut c, &["OBJECT", "ENCODING", "z"]), "$8\r\nskiplist\r\n");
    assert_eq!(cmd(&mut c, &["ZSCORE", "z", "same"]), "$3\r\n128\r\n");
    // The same for an existing listpack.
    cmd(&mut c, &["ZADD", "y", "1", "a"]);
    args[1] = "y".to_string();
    c.cmd(&args).unwrap();
    assert_eq!(cmd(&mut c, &["ZCARD", "y"]), ":2\r\n");
    assert_eq!(cmd(&mut c, &["OBJECT", "ENCODING", "y"]), "$8\r\nskiplist\r\n");
}
