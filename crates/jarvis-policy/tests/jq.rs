//! jq and yq judged whole under the shipped policy: a filter that reads the
//! environment, a line that loads a secret file, a yq that edits or splits
//! files, code taken from files and filters that cannot be read never run
//! unattended, however they are spelt, while everyday queries of JSON and
//! YAML do. The reader itself is property-tested here too: it never panics,
//! and `env` or `$ENV` added to a readable filter is always found.

use jarvis_core::Decision;
use jarvis_policy::jq::{effects_jq, effects_yq};
use jarvis_policy::{Judgement, Request};
use proptest::prelude::*;

mod common;
use common::SHIPPED;

fn judge(line: &str) -> Judgement {
    SHIPPED.judge(&Request::new(line))
}

#[track_caller]
fn assert_attended(lines: &[&str]) {
    for line in lines {
        let j = judge(line);
        assert_ne!(
            j.decision,
            Decision::Allow,
            "`{line}` would run unattended: {:#?}",
            j.reasons
        );
    }
}

#[track_caller]
fn assert_allowed(lines: &[&str]) {
    let mut problems = Vec::new();
    for line in lines {
        let j = judge(line);
        if j.decision != Decision::Allow {
            problems.push(format!(
                "`{line}`: {} (risk {}): {}",
                j.decision,
                j.risk.score(),
                j.reasons.join("; ")
            ));
        }
    }
    assert!(problems.is_empty(), "not allowed:\n{}", problems.join("\n"));
}

#[track_caller]
fn assert_reason(line: &str, words: &str) {
    let j = judge(line);
    assert!(
        j.reasons.iter().any(|r| r.contains(words)),
        "`{line}`: no reason mentions `{words}`: {:#?}",
        j.reasons
    );
}

#[test]
fn the_environment_never_leaves_unattended() {
    assert_attended(&[
        "jq -n env",
        "jq -n '$ENV.DB_PASSWORD'",
        "jq -rn 'env.AWS_SECRET_ACCESS_KEY'",
        "jq -n '$ENV'",
        "jq -n '\"\\(env.TOKEN)\"'",
        "jq -rn '@sh \"export T=\\(env.TOKEN)\"'",
        "jq -n '{$ENV}'",
        "jq -n '$ ENV | keys'",
        "jq -n 'env | to_entries[] | select(.key | test(\"PASS\"))'",
        "echo '{}' | jq '. + env'",
        "cat x.json | jq '{a: env}'",
        "jq '{(env.HOME): 1}' x.json",
        "jq -n '[env][0]'",
        "jq -n '# just a comment\nenv'",
        "jq -n 'try env catch null'",
        "jq -n '\"\\(\"\\(env)\")\"'",
        "gojq -n env",
        "jaq -n '$ENV.PATH'",
        "yq -n '$ENV'",
        "yq -n 'env(DB_PASSWORD)'",
        "yq '.a = strenv(TOKEN)' f.yml",
        "yq '.x = \"${PASS}\" | envsubst' f.yml",
        "yq -n 'keysenv(HOME)'",
        "yq -n '.a = env(HOME) | .b = 1'",
        "yq -n 'eval(\"env(SECRET)\")'",
    ]);
    assert_reason("jq -n env", "environment variables");
    assert_reason("yq -n 'env(X)'", "environment variables");
}

#[test]
fn a_secret_file_loaded_by_the_filter_needs_a_person() {
    assert_attended(&[
        "jq -n --rawfile k /srv/app/.env '$k'",
        "jq -n --slurpfile k /root/.ssh/id_rsa '$k'",
        "jq --rawfile s /etc/shadow -n '$s'",
        "jq --argfile c /root/.docker/config.json -n '$c'",
        "jq -n --rawfile k ~/.ssh/id_ed25519 '$k'",
        "jq -rn --rawfile k .env '$k'",
        "gojq -n --rawfile k /srv/app/.env '$k'",
        "yq -n 'load(\"/srv/app/.env\")'",
        "yq -n '.k = load_str(\"/etc/shadow\")'",
        "yq -n '.k = load_base64(\"/root/.ssh/id_rsa\")'",
        "yq '.a = load(.path)' f.yml",
        "yq -y --rawfile k /srv/app/.env '.k = $k' f.yml",
        "jq -n '\"m\" | modulemeta'",
    ]);
    assert_reason("jq -n --rawfile k /srv/app/.env '$k'", "/srv/app/.env");
    assert_reason("yq -n 'load(\"/etc/shadow\")'", "/etc/shadow");
    assert_reason("yq '.a = load(.path)' f.yml", "named only at run time");
    // A file that holds no secret is read like any operand.
    assert_allowed(&[
        "jq -n --rawfile t /srv/app/template.txt '$t'",
        "jq -n --slurpfile c /srv/monitoring/targets.json '$c[0]'",
        "yq -n 'load(\"/srv/monitoring/compose.yml\") | .services | keys'",
    ]);
}

#[test]
fn yq_that_writes_files_needs_a_person() {
    assert_attended(&[
        "yq -i '.a=1' f.yml",
        "yq --in-place -y '.services.grafana.image = \"grafana/grafana:11\"' compose.yml",
        "yq --inplace '.a=1' f.yml",
        "yq -yi '.a=1' f.yml",
        "yq -Pi '.a=1' f.yml",
        "yq e -i '.a=1' f.yml",
        "yq -i f.yml",
        "xq -i -x '.a=1' f.xml",
        "jaq -i '.a=1' f.json",
        "jaq --in-place '.a=1' f.json",
        "yq -s '.name' f.yml",
        "yq --split-exp '.kind' all.yml",
        "yq -s'\"/etc/cron.d/\" + .name' f.yml",
        "yq --split-exp='$index' all.yml",
        "yq --split-exp-file split.yq all.yml",
    ]);
    assert_reason(
        "yq -i '.a=1' /srv/monitoring/compose.yml",
        "/srv/monitoring/compose.yml",
    );
    assert_reason("yq -s '.name' f.yml", "named only at run time");
    // The file written is a path like any other: a block device is a
    // guardrail, and a system file is a change to the system.
    let j = judge("yq -i '.a=1' /dev/sda");
    assert_eq!(j.decision, Decision::Deny, "{:#?}", j.reasons);
    assert_reason("yq -i '.a=1' /etc/passwd", "/etc/passwd");
}

#[test]
fn code_from_files_needs_a_person() {
    assert_attended(&[
        "jq -f prog.jq x.json",
        "jq --from-file prog.jq x.json",
        "jq -nf prog.jq",
        "jq -L /tmp/mods 'import \"m\" as m; m::f' x.json",
        "jq -rL/tmp/mods . x.json",
        "jq --library-path /tmp/mods . x.json",
        "jq 'include \"m\"; f' x.json",
        "jq -n 'import \"evil\" as e; e::run'",
        "jq -n 'import \"data\" as $d; $d'",
        "jq --run-tests tests.txt",
        "yq --from-file prog.yq f.yml",
        "yq prog.yq f.yml",
        "yq -f prog.jq f.yml",
    ]);
    assert_reason("jq -f prog.jq x.json", "from a file that is not read here");
}

#[test]
fn what_a_go_yq_system_call_runs_is_judged_as_shell() {
    assert_attended(&[
        "yq --security-enable-system-operator -n '.a = system(\"id\")'",
        "yq -n '.a = system(.cmd)'",
    ]);
    let j =
        judge("yq --security-enable-system-operator -n '.a = system(\"rm\"; [\"-rf\", \"/\"])'");
    assert_eq!(j.decision, Decision::Deny, "{:#?}", j.reasons);
}

#[test]
fn what_cannot_be_read_needs_a_person() {
    // jq matches long options exactly: jq 1.6 answers `--raw` with "Unknown
    // option --raw" and exit status 2, and so does every abbreviation.
    assert_attended(&[
        "jq --raw . x.json",
        "jq --raw-out . x.json",
        "jq --no-such-option . x.json",
        "jq -rcx . x.json",
        "jq '\"unterminated' x.json",
        "jq '[.a' x.json",
        "jq '.a]' x.json",
        "jq -n --arg x",
        "jq -n 'eval(.x)'",
        "yq -n 'eval(.expr)'",
    ]);
    assert_reason("jq --raw . x.json", "cannot be read");
}

#[test]
fn everyday_queries_run_unattended() {
    assert_allowed(&[
        "cat x.json | jq '.[0].State'",
        "jq -r '.items[].metadata.name' pods.json",
        "jq '.[] | select(.status==\"up\") | .name' s.json",
        "jq -s 'add' a.json b.json",
        "jq --arg n grafana '.[] | select(.name==$n)' x.json",
        "jq -n '[inputs]' a.json",
        "yq '.services | keys' /srv/monitoring/compose.yml",
        "yq -y '.services.grafana.image' compose.yml",
        "jq '{name, env: .Config.Env | length}' x.json",
        "jq '.env' x.json",
        "jq '.[] | {env}' x.json",
        // Twenty-odd more from a homelab's day.
        "curl -s http://localhost:9090/api/v1/targets | jq '.data.activeTargets[] | {job: .labels.job, health}'",
        "curl -s http://127.0.0.1:3000/api/health | jq -r .database",
        "jq -r '.[] | \"\\(.name)\\t\\(.state)\"' containers.json",
        "jq 'keys' /srv/monitoring/grafana/provisioning/dashboards/node.json",
        "jq '.panels | length' dashboard.json",
        "jq -c '.[] | select(.labels.severity == \"critical\")' alerts.json",
        "jq -r 'to_entries[] | \"\\(.key)=\\(.value)\"' labels.json",
        "jq --tab . settings.json",
        "jq -S . /etc/docker/daemon.json",
        "jq '.[0].Mounts[] | .Source' inspect.json",
        "jq -r '.items[] | select(.status.phase != \"Running\") | .metadata.name' pods.json",
        "jq 'map(select(.up)) | length' targets.json",
        "jq -e '.status == \"ok\"' health.json",
        "jq --argjson n 5 '.[:$n]' list.json",
        "jq -r '.[] | @tsv' rows.json",
        "jq -s 'map(.count) | add' day1.json day2.json",
        "jq 'del(.password)' config.json",
        "jq '[.[] | .image] | unique' services.json",
        "jq -r '.Config.Env[]' container.json",
        "jq 'with_entries(select(.key | test(\"^GF_\")))' env.json",
        "jq -rn --slurpfile c conf.json '$c[0].name'",
        "jq -n --arg f /srv/app/.env '$f'",
        "jq '.[] | .env' x.json",
        "jq '.services.web.environment' compose.json",
        "jq -r '.[] | @sh \"echo \\(.name)\"' x.json",
        "jq 'paths(type == \"number\")' x.json",
        "jq '$__loc__' x.json",
        "jq -r 'input_filename' a.json b.json",
        "jq '.version' package.json",
        "yq -r '.services[].image' /srv/monitoring/compose.yml",
        "yq '.services.grafana.environment' docker-compose.yml",
        "yq e '.spec.replicas' deploy.yaml",
        "yq eval '.metadata.name' deploy.yaml",
        "yq -y '.services | keys' compose.yml",
        "yq '.services | to_entries | map(.key)' compose.yml",
        "yq -o json '.' config.yaml",
        "yq -P -oy '.' sample.json",
        "yq '.services.grafana.ports[]' /srv/monitoring/compose.yml",
        "yq 'select(.kind == \"Deployment\") | .metadata.name' all.yaml",
    ]);
}

/// Pieces of jq that keep a filter readable wherever they stand at its top
/// level, `env` spelt as a field, a key and a string among them.
fn readable_piece() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        ".",
        ".a",
        ".env",
        ".[]",
        ".[0]",
        "..",
        "keys",
        "length",
        "map(.a)",
        "select(.x == \"env\")",
        "{env}",
        "{env: .a, b}",
        "{\"env\": 1}",
        "\"\\(.name)\"",
        "@sh \"echo \\(.a)\"",
        "[.[] | .image]",
        "$__loc__",
        "input_filename",
        "to_entries",
        "if . then 1 else 2 end",
        "reduce .[] as $x (0; . + $x)",
        ". as {env: $e} | $e",
        "try .a catch null",
        "getpath([\"env\"])",
        "# a comment\n.",
        ".a // \"env\"",
    ])
}

fn as_args(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn the_readers_never_panic(words in prop::collection::vec(any::<String>(), 0..5)) {
        let _ = effects_jq(&words);
        let _ = effects_yq(&words);
    }

    #[test]
    fn the_readers_never_panic_on_jq_like_text(
        pieces in prop::collection::vec(prop::sample::select(vec![
            "\"", "\\(", ")", "(", "[", "]", "{", "}", "$", "@", ".", "..", "env", "#", "\n",
            "\\", "|", ",", ":", ";", "load", "eval", "system", "\"x\"", "-", "--", "-i", "-s",
            "-f", "--arg", "--rawfile", "a", "1e", "::", "?//", "def", "import",
        ]), 0..30),
    ) {
        let text = pieces.concat();
        let _ = effects_jq(&as_args(&["-n", &text]));
        let _ = effects_yq(&as_args(&[&text, &text]));
        let _ = effects_jq(&as_args(&pieces));
        let _ = effects_yq(&as_args(&pieces));
    }

    #[test]
    fn env_added_at_the_top_level_is_always_found(
        pieces in prop::collection::vec(readable_piece(), 1..6),
        at in 0usize..6,
        added in prop::sample::select(vec!["env", "$ENV", "env.SECRET", "$ENV.X", "\"\\(env)\"", "{a: env}", "{$ENV}"]),
    ) {
        let filter = pieces.join(" | ");
        let clean = effects_jq(&as_args(&["-n", &filter]));
        prop_assert!(clean.only_transforms(), "{}: {:?}", filter, clean);
        let mut with = pieces.clone();
        with.insert(at.min(pieces.len()), added);
        let filter = with.join(" | ");
        for e in [effects_jq(&as_args(&["-n", &filter])), effects_yq(&as_args(&["-n", &filter]))] {
            prop_assert!(e.environment || e.unreadable, "{}: {:?}", filter, e);
        }
    }
}
