//! `app.nginx_workers`: nginx's worker processes against the CPUs, its configuration
//! (worker_processes, worker_connections against the workers' open-files limit,
//! worker_rlimit_nofile, keepalive_timeout) and a single busy worker.
//!
//! nginx processes are those whose comm is `nginx`; the master's cmdline reads
//! `nginx: master process ...`, a worker's `nginx: worker process` (workers shutting
//! down after a reload are left out). Workers are grouped under their parent, the
//! master, which names the finding: `nginx (pid MASTER)`.
//!
//! The configuration is the file the master was started with (`-c FILE` in its
//! cmdline) when the bundle holds it, else `etc/nginx/nginx.conf`, with its `include`s
//! (globs in the last path component) expanded from the bundle. The parser is small
//! and tolerant: comments, quotes, `;` and blocks; anything it does not understand is
//! skipped. The config in the bundle is the file on disk, which may differ from what a
//! running nginx loaded if it was not reloaded since.

use std::collections::BTreeMap;

use serde_json::json;

use crate::samples::{round1, Window};
use crate::{Evidence, Finding, Input, Need, Rule, Severity, Skip};

pub struct NginxWorkers;

/// A worker using this much CPU over the window is busy.
const BUSY_PERCENT: f64 = 80.0;
/// Other workers below this share are idle (for the single-busy-worker check).
const IDLE_PERCENT: f64 = 20.0;
/// More workers than this many per CPU only add context switches and memory.
const MAX_WORKERS_PER_CPU: u32 = 2;
/// nginx's defaults when a directive is absent.
const DEFAULT_WORKER_CONNECTIONS: u64 = 512;
const DEFAULT_KEEPALIVE_TIMEOUT: &str = "75s";
/// Include nesting followed at most (include loops).
const MAX_INCLUDE_DEPTH: usize = 8;
const DEFAULT_CONF: &str = "etc/nginx/nginx.conf";

impl Rule for NginxWorkers {
    fn id(&self) -> &'static str {
        "app.nginx_workers"
    }

    fn detects(&self) -> &'static str {
        "nginx worker count against CPUs, worker_connections against the workers' open-files \
         limit, and a single busy worker"
    }

    fn thresholds(&self) -> &'static str {
        "one finding per nginx master (subject `nginx (pid MASTER)`), warning when any of: \
         (1) worker_connections (events block; nginx's default 512) is above the workers' soft \
         'Max open files' (proc/<pid>/limits): every client connection needs a descriptor, a \
         proxied one two, so nginx fails accept() with 'Too many open files' long before \
         worker_connections is reached (raise it with worker_rlimit_nofile, at least 2 x \
         worker_connections when proxying); (2) more workers than 2 per online CPU: nginx \
         workers are event loops, one per CPU saturates the machine and more only add context \
         switches and memory; (3) fewer workers than CPUs while a worker is at least 80 % busy \
         over the sampling window: that worker is the bottleneck while CPUs idle \
         (worker_processes auto); (4) with several workers, one at least 80 % busy while all \
         others are under 20 %: the load is not spread (enable reuseport on the listen \
         directive, or revisit accept_mutex). Fewer workers than CPUs on an idle nginx is not \
         reported. The CPU checks need at least 2 samples; without them only the configuration \
         is judged. No nginx process: the rule passes."
    }

    fn inputs(&self) -> &'static [&'static str] {
        &[
            "proc/<pid>/stat",
            "proc/<pid>/cmdline",
            "proc/<pid>/limits",
            "etc/nginx/nginx.conf (and its includes, or the master's -c file)",
            "samples/<n>/proc/<pid>/stat (optional: busy workers)",
            "manifest.json (online CPUs)",
        ]
    }

    fn evaluate(&self, input: &Input) -> Need<Vec<Finding>> {
        let pids = input.pids();
        if pids.is_empty() {
            return Err(Skip::missing("proc/<pid>/stat"));
        }
        // master pid -> worker pids
        let mut masters: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        let mut master_cmdlines: BTreeMap<u32, String> = BTreeMap::new();
        for pid in pids {
            let Ok(stat) = input.process_stat(pid) else { continue };
            if stat.comm != "nginx" {
                continue;
            }
            let cmdline = cmdline(input, pid);
            if cmdline.starts_with("nginx: master process") {
                masters.entry(pid).or_default();
                master_cmdlines.insert(pid, cmdline);
            } else if cmdline.starts_with("nginx: worker process") && !cmdline.contains("shutting down") {
                masters.entry(stat.ppid.max(0) as u32).or_default().push(pid);
            }
        }
        if masters.is_empty() {
            return Ok(Vec::new());
        }
        let cpus = input.online_cpus().ok();
        let cpu_by_pid: Option<BTreeMap<u32, f64>> =
            Window::read(input).ok().map(|w| w.process_cpu(input).iter().map(|p| (p.pid, p.cpu_percent)).collect());
        let mut findings = Vec::new();
        for (master, workers) in masters {
            let cmd = master_cmdlines.get(&master).cloned().unwrap_or_default();
            if let Some(f) = self.judge(input, master, &cmd, &workers, cpus, cpu_by_pid.as_ref()) {
                findings.push(f);
            }
        }
        Ok(findings)
    }
}

impl NginxWorkers {
    fn judge(
        &self,
        input: &Input,
        master: u32,
        master_cmdline: &str,
        workers: &[u32],
        cpus: Option<u32>,
        cpu_by_pid: Option<&BTreeMap<u32, f64>>,
    ) -> Option<Finding> {
        let conf_entry = config_entry(input, master_cmdline);
        let conf = conf_entry.as_deref().map(|e| Config::load(input, e));
        let worker_connections =
            conf.as_ref().and_then(|c| c.worker_connections.as_deref()).and_then(|v| v.parse::<u64>().ok());
        let effective_connections = worker_connections.unwrap_or(DEFAULT_WORKER_CONNECTIONS);

        // The lowest soft open-files limit among the workers, with its line.
        let mut fd_limit: Option<(u64, u32, String)> = None;
        for &w in workers {
            let entry = format!("proc/{w}/limits");
            let Ok(text) = input.text(&entry) else { continue };
            let Some((soft, line)) = soft_nofile(&text) else { continue };
            if fd_limit.as_ref().is_none_or(|(s, _, _)| soft < *s) {
                fd_limit = Some((soft, w, line));
            }
        }

        let n = workers.len() as u32;
        let worker_cpu: Vec<(u32, f64)> = match cpu_by_pid {
            Some(m) => workers.iter().filter_map(|w| m.get(w).map(|c| (*w, *c))).collect(),
            None => Vec::new(),
        };
        let busy: Vec<(u32, f64)> = worker_cpu.iter().copied().filter(|(_, c)| *c >= BUSY_PERCENT).collect();

        let mut problems: Vec<String> = Vec::new();
        let mut advice: Vec<String> = Vec::new();
        if let Some((soft, pid, _)) = &fd_limit {
            if effective_connections > *soft {
                problems.push(format!(
                    "worker_connections {effective_connections}{} is above the workers' open-files limit {soft} (pid {pid})",
                    if worker_connections.is_none() { " (default)" } else { "" }
                ));
                advice.push(format!(
                    "Each connection needs a descriptor (a proxied one two): with a limit of {soft} a worker \
                     fails accept() with 'Too many open files' (in the error log) before reaching \
                     {effective_connections} connections. Set `worker_rlimit_nofile {};` in the main context \
                     (or LimitNOFILE= in nginx's systemd unit), or lower worker_connections.",
                    effective_connections * 2
                ));
            }
        }
        if let Some(c) = cpus {
            if n > MAX_WORKERS_PER_CPU * c {
                problems.push(format!("{n} workers for {c} CPUs (more than {MAX_WORKERS_PER_CPU} per CPU)"));
                advice.push(
                    "nginx workers are event loops: one per CPU uses the machine fully, more only add context \
                     switches and memory. Use `worker_processes auto;`."
                        .into(),
                );
            } else if n > 0 && n < c && !busy.is_empty() {
                problems.push(format!(
                    "{n} worker{} for {c} CPUs while {} busy",
                    if n == 1 { "" } else { "s" },
                    describe_busy(&busy)
                ));
                advice.push(
                    "The busy worker is the bottleneck while other CPUs idle: use `worker_processes auto;` (one \
                     worker per CPU)."
                        .into(),
                );
            }
        }
        if n >= 2 && busy.len() == 1 && worker_cpu.iter().all(|(p, c)| *p == busy[0].0 || *c < IDLE_PERCENT) {
            problems.push(format!(
                "a single busy worker: {} while the other {} are under {IDLE_PERCENT:.0} %",
                describe_busy(&busy),
                n - 1
            ));
            advice.push(
                "The load is not spread across workers (one worker wins every accept, or one long-lived \
                 connection carries the traffic): add `reuseport` to the listen directives so the kernel \
                 distributes connections, or revisit accept_mutex / multi_accept."
                    .into(),
            );
        }
        if problems.is_empty() {
            return None;
        }

        let mut f = Finding::new(
            self.id(),
            Severity::Warning,
            format!("nginx (pid {master})"),
            format!("nginx (pid {master}): {}", problems.join("; ")),
        )
        .fact("master_pid", master)
        .fact("workers", n)
        .fact("worker_pids", json!(workers))
        .fact("problems", json!(problems))
        .fact("worker_connections", effective_connections)
        .fact("worker_connections_default", worker_connections.is_none());
        if let Some(c) = cpus {
            f = f.fact("cpus", c);
        }
        if let Some((soft, pid, line)) = &fd_limit {
            f = f
                .fact("worker_fd_limit", *soft)
                .evidence(Evidence::entry(&format!("proc/{pid}/limits")).line(line.clone()));
        }
        if !worker_cpu.is_empty() {
            let m: serde_json::Map<String, serde_json::Value> =
                worker_cpu.iter().map(|(p, c)| (p.to_string(), json!(round1(*c)))).collect();
            f = f.fact("worker_cpu_percent", serde_json::Value::Object(m)).evidence(
                worker_cpu.iter().fold(Evidence::entry("samples/<n>/proc/<pid>/stat"), |e, (p, c)| {
                    e.value(&format!("pid {p} cpu_percent"), round1(*c))
                }),
            );
        }
        f = f.evidence(Evidence::entry(&format!("proc/{master}/cmdline")).line(if master_cmdline.is_empty() {
            "(absent)"
        } else {
            master_cmdline
        }));
        if let (Some(entry), Some(c)) = (&conf_entry, &conf) {
            f = f
                .fact("config", entry.clone())
                .fact("worker_processes", c.worker_processes.clone().map_or(json!("1 (default)"), |v| json!(v)))
                .fact("worker_rlimit_nofile", c.worker_rlimit_nofile.clone().map_or(json!(null), |v| json!(v)))
                .fact(
                    "keepalive_timeout",
                    c.keepalive_timeout.clone().unwrap_or_else(|| format!("{DEFAULT_KEEPALIVE_TIMEOUT} (default)")),
                )
                .fact("config_files", json!(c.files));
            f = f.evidence(c.lines.iter().fold(Evidence::entry(entry), |e, l| e.line(l.clone())));
        }
        Some(f.advice(advice.join(" ")))
    }
}

fn describe_busy(busy: &[(u32, f64)]) -> String {
    busy.iter().map(|(p, c)| format!("worker pid {p} is {c:.0} % busy")).collect::<Vec<_>>().join(", ")
}

/// A cmdline with its NULs as spaces, trimmed.
fn cmdline(input: &Input, pid: u32) -> String {
    let raw = input.raw(&format!("proc/{pid}/cmdline")).unwrap_or_default();
    let s: String = snap_bundle::text::lossy(&raw).replace('\0', " ");
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The config entry: the master's `-c FILE` when the bundle holds it, else the default.
fn config_entry(input: &Input, master_cmdline: &str) -> Option<String> {
    let words: Vec<&str> = master_cmdline.split_whitespace().collect();
    let from_c = words.windows(2).find(|w| w[0] == "-c").map(|w| w[1]);
    if let Some(path) = from_c.and_then(|p| p.strip_prefix('/')) {
        if input.has(path) {
            return Some(path.to_string());
        }
    }
    input.has(DEFAULT_CONF).then(|| DEFAULT_CONF.to_string())
}

/// The soft "Max open files" of a limits file and its line; unlimited is not judged.
fn soft_nofile(text: &str) -> Option<(u64, String)> {
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..].split_whitespace().next()?.parse::<u64>().ok()?;
    Some((soft, line.trim_end().to_string()))
}

/// The directives this rule reads, first occurrence in its context.
#[derive(Debug, Default, PartialEq)]
struct Config {
    worker_processes: Option<String>,
    worker_connections: Option<String>,
    worker_rlimit_nofile: Option<String>,
    keepalive_timeout: Option<String>,
    /// The files read (entries), main first.
    files: Vec<String>,
    /// `file: directive args;` of what was found, for evidence.
    lines: Vec<String>,
}

#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Semi,
    Open,
    Close,
}

fn tokenize(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut Vec<Token>| {
        if !word.is_empty() {
            out.push(Token::Word(std::mem::take(word)));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '#' if word.is_empty() => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '"' | '\'' if word.is_empty() => {
                let mut quoted = String::new();
                while let Some(q) = chars.next() {
                    if q == '\\' {
                        if let Some(n) = chars.next() {
                            quoted.push(n);
                        }
                    } else if q == c {
                        break;
                    } else {
                        quoted.push(q);
                    }
                }
                out.push(Token::Word(quoted));
            }
            ';' | '{' | '}' => {
                flush(&mut word, &mut out);
                out.push(match c {
                    ';' => Token::Semi,
                    '{' => Token::Open,
                    _ => Token::Close,
                });
            }
            c if c.is_whitespace() => flush(&mut word, &mut out),
            c => word.push(c),
        }
    }
    flush(&mut word, &mut out);
    out
}

impl Config {
    fn load(input: &Input, entry: &str) -> Config {
        let mut c = Config::default();
        let dir = entry.rsplit_once('/').map_or("", |(d, _)| d).to_string();
        let mut ctx = Vec::new();
        c.read(input, entry, &dir, &mut ctx, 0);
        c
    }

    fn read(&mut self, input: &Input, entry: &str, dir: &str, ctx: &mut Vec<String>, depth: usize) {
        let Ok(text) = input.text(entry) else { return };
        self.files.push(entry.to_string());
        let mut words: Vec<String> = Vec::new();
        for t in tokenize(&text) {
            match t {
                Token::Word(w) => words.push(w),
                Token::Open => {
                    ctx.push(words.first().cloned().unwrap_or_default());
                    words.clear();
                }
                Token::Close => {
                    ctx.pop();
                    words.clear();
                }
                Token::Semi => {
                    let directive = std::mem::take(&mut words);
                    let Some((name, args)) = directive.split_first() else { continue };
                    if name == "include" {
                        if depth < MAX_INCLUDE_DEPTH {
                            for a in args {
                                for inc in include_entries(input, dir, a) {
                                    self.read(input, &inc, dir, ctx, depth + 1);
                                }
                            }
                        }
                        continue;
                    }
                    self.directive(entry, ctx, name, args);
                }
            }
        }
    }

    fn directive(&mut self, entry: &str, ctx: &[String], name: &str, args: &[String]) {
        let slot = match (ctx.iter().map(String::as_str).collect::<Vec<_>>().as_slice(), name) {
            ([], "worker_processes") => &mut self.worker_processes,
            ([], "worker_rlimit_nofile") => &mut self.worker_rlimit_nofile,
            (["events"], "worker_connections") => &mut self.worker_connections,
            (["http"], "keepalive_timeout") => &mut self.keepalive_timeout,
            _ => return,
        };
        if slot.is_none() {
            *slot = Some(args.join(" "));
            self.lines.push(format!("{entry}: {name} {};", args.join(" ")));
        }
    }
}

/// Bundle entries an `include` argument names: absolute paths lose their `/`, relative
/// ones are taken from the main config's directory; `*` and `?` match within one path
/// component. Sorted, as nginx does.
fn include_entries(input: &Input, dir: &str, arg: &str) -> Vec<String> {
    let path = match arg.strip_prefix('/') {
        Some(p) => p.to_string(),
        None if dir.is_empty() => arg.to_string(),
        None => format!("{dir}/{arg}"),
    };
    if !path.contains(['*', '?']) {
        return vec![path];
    }
    let pattern: Vec<&str> = path.split('/').collect();
    let mut out: Vec<String> = input
        .entries()
        .iter()
        .filter(|e| {
            let parts: Vec<&str> = e.split('/').collect();
            parts.len() == pattern.len() && parts.iter().zip(&pattern).all(|(p, q)| wildcard(q, p))
        })
        .cloned()
        .collect();
    out.sort();
    out
}

/// `*` any run of characters, `?` one character.
fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::bundle_with;
    use crate::samples::fixtures::{pid_stat, stat};

    /// Debian 12's /etc/nginx/nginx.conf (nginx-light 1.22.1), comments kept, with
    /// worker_connections and a keepalive_timeout chosen per test.
    fn nginx_conf(worker_connections: u64) -> String {
        format!(
            "user www-data;\nworker_processes auto;\npid /run/nginx.pid;\nerror_log /var/log/nginx/error.log;\n\
             include /etc/nginx/modules-enabled/*.conf;\n\nevents {{\n\tworker_connections {worker_connections};\n\
             \t# multi_accept on;\n}}\n\nhttp {{\n\n\t##\n\t# Basic Settings\n\t##\n\n\tsendfile on;\n\ttcp_nopush on;\n\
             \ttypes_hash_max_size 2048;\n\t# server_tokens off;\n\n\tinclude /etc/nginx/mime.types;\n\
             \tdefault_type application/octet-stream;\n\n\tssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3; # Dropping SSLv3, ref: POODLE\n\
             \tssl_prefer_server_ciphers on;\n\n\taccess_log /var/log/nginx/access.log;\n\n\tgzip on;\n\n\
             \tinclude /etc/nginx/conf.d/*.conf;\n\tinclude /etc/nginx/sites-enabled/*;\n}}\n"
        )
    }

    const SITE: &str = "server {\n\tlisten 80 default_server;\n\tkeepalive_timeout 5s; # server level, not http\n\
                        \troot /var/www/html;\n\tlocation / {\n\t\ttry_files $uri $uri/ =404;\n\t}\n}\n";
    const CONF_D: &str = "# tuning\nkeepalive_timeout 30s 25s;\n";

    /// Real /proc/<pid>/stat of nginx-light 1.22.1's master and a worker on this VM.
    fn master_stat(pid: u32) -> String {
        format!(
            "{pid} (nginx) S 1 {pid} {pid} 0 -1 4194368 27 0 0 0 0 0 0 0 20 0 1 0 656328 10694656 389 \
             18446744073709551615 94046072111104 94046072894577 140721515749104 0 0 0 0 1073745920 402745863 1 0 0 \
             17 1 0 0 0 0 0 94046073129040 94046073230112 94046806966272 140721515752168 140721515752174 \
             140721515752174 140721515753448 0\n"
        )
    }
    fn worker_stat(pid: u32, master: u32, utime: u64) -> String {
        format!(
            "{pid} (nginx) S {master} {master} {master} 0 -1 4194624 191 0 0 0 {utime} 0 0 0 20 0 1 0 656328 \
             12341248 1016 18446744073709551615 94046072111104 94046072894577 140721515749104 0 0 0 0 1073745920 \
             402745863 1 0 0 17 0 0 0 0 0 0 94046073129040 94046073230112 94046806966272 140721515752168 \
             140721515752174 140721515752174 140721515753448 0\n"
        )
    }
    const MASTER_CMDLINE: &str = "nginx: master process /usr/sbin/nginx -g daemon on; master_process on;\0";
    const WORKER_CMDLINE: &str = "nginx: worker process\0";

    fn limits(soft: u64) -> String {
        format!(
            "Limit                     Soft Limit           Hard Limit           Units     \n\
             Max processes             7795                 7795                 processes \n\
             Max open files            {soft:<20} 524288               files     \n\
             Max locked memory         8388608              8388608              bytes     \n"
        )
    }

    /// A bundle with one master (100) and `workers` workers (101..), their limits, the
    /// config, 2 CPUs and a 1 s window in which worker i used `cpu[i]` % CPU.
    fn bundle(workers: usize, conf: &str, soft: u64, cpu: &[u64]) -> crate::rules::testing::TestBundle {
        let mut files: Vec<(String, String)> = vec![
            ("manifest.json".into(), r#"{"format_version":1,"collector_pid":9,"host":{"clock_ticks":100,"online_cpus":2},"samples":[{"index":0,"clocks":{"monotonic_ns":1000000000}},{"index":1,"clocks":{"monotonic_ns":2000000000}}]}"#.into()),
            ("proc/100/stat".into(), master_stat(100)),
            ("proc/100/cmdline".into(), MASTER_CMDLINE.into()),
            ("proc/100/limits".into(), limits(soft)),
            ("proc/1/stat".into(), pid_stat(1, "systemd", 'S', 10, 10, 0)),
            ("proc/1/cmdline".into(), "/sbin/init\0".into()),
            ("etc/nginx/nginx.conf".into(), conf.into()),
            ("etc/nginx/sites-enabled/default".into(), SITE.into()),
            ("etc/nginx/conf.d/tuning.conf".into(), CONF_D.into()),
            ("etc/nginx/mime.types".into(), "types {\n    text/html html htm;\n}\n".into()),
            ("samples/0/proc/stat".into(), stat(&[[0, 0, 0, 100, 0, 0, 0, 0]; 2], 1, 0)),
            ("samples/1/proc/stat".into(), stat(&[[50, 0, 0, 150, 0, 0, 0, 0]; 2], 1, 0)),
        ];
        for i in 0..workers {
            let pid = 101 + i as u32;
            files.push((format!("proc/{pid}/stat"), worker_stat(pid, 100, 0)));
            files.push((format!("proc/{pid}/cmdline"), WORKER_CMDLINE.into()));
            files.push((format!("proc/{pid}/limits"), limits(soft)));
            let used = cpu.get(i).copied().unwrap_or(0);
            files.push((format!("samples/0/proc/{pid}/stat"), worker_stat(pid, 100, 1000)));
            files.push((format!("samples/1/proc/{pid}/stat"), worker_stat(pid, 100, 1000 + used)));
        }
        let refs: Vec<(&str, &str)> = files.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        bundle_with(&refs)
    }

    fn run(b: &snap_bundle::Bundle) -> Vec<Finding> {
        NginxWorkers.evaluate(&Input::new(b)).unwrap()
    }

    #[test]
    fn healthy_nginx_is_quiet() {
        let b = bundle(2, &nginx_conf(768), 1024, &[3, 2]);
        assert_eq!(run(&b), Vec::new());
    }

    #[test]
    fn no_nginx_passes_and_no_processes_is_not_evaluated() {
        let b = bundle_with(&[("proc/1/stat", &pid_stat(1, "systemd", 'S', 1, 1, 0))]);
        assert_eq!(run(&b), Vec::new());
        let b = bundle_with(&[("proc/loadavg", "0.1 0.1 0.1 1/100 5\n")]);
        assert_eq!(NginxWorkers.evaluate(&Input::new(&b)).unwrap_err(), Skip::missing("proc/<pid>/stat"));
    }

    #[test]
    fn worker_connections_above_the_workers_fd_limit_warns_with_config_facts() {
        let b = bundle(2, &nginx_conf(4096), 1024, &[1, 1]);
        let f = run(&b);
        assert_eq!(f.len(), 1, "{f:#?}");
        let f = &f[0];
        assert_eq!((f.subject.as_str(), f.severity), ("nginx (pid 100)", Severity::Warning));
        assert_eq!(f.facts["worker_connections"], 4096);
        assert_eq!(f.facts["worker_fd_limit"], 1024);
        assert_eq!(f.facts["workers"], 2);
        assert_eq!(f.facts["cpus"], 2);
        assert_eq!(f.facts["worker_processes"], "auto");
        // http-level keepalive_timeout from conf.d, not the server-level one in sites-enabled.
        assert_eq!(f.facts["keepalive_timeout"], "30s 25s");
        assert_eq!(
            f.facts["config_files"],
            json!([
                "etc/nginx/nginx.conf",
                "etc/nginx/mime.types",
                "etc/nginx/conf.d/tuning.conf",
                "etc/nginx/sites-enabled/default"
            ])
        );
        assert!(
            f.summary.contains("worker_connections 4096 is above the workers' open-files limit 1024"),
            "{}",
            f.summary
        );
        assert!(f.advice.contains("worker_rlimit_nofile 8192"), "{}", f.advice);
    }

    #[test]
    fn single_busy_worker_among_idle_ones_warns() {
        let b = bundle(2, &nginx_conf(768), 1024, &[95, 2]);
        let f = run(&b);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert!(f[0].summary.contains("a single busy worker: worker pid 101 is 95 % busy"), "{}", f[0].summary);
        assert_eq!(f[0].facts["worker_cpu_percent"]["101"], 95.0);
        assert!(f[0].advice.contains("reuseport"));
        // Both busy: the load is spread, and 2 workers for 2 CPUs is right.
        assert_eq!(run(&bundle(2, &nginx_conf(768), 1024, &[95, 90])), Vec::new());
    }

    #[test]
    fn one_busy_worker_on_two_cpus_and_too_many_workers_warn() {
        let conf = nginx_conf(768).replace("worker_processes auto;", "worker_processes 1;");
        let f = run(&bundle(1, &conf, 1024, &[99]));
        assert_eq!(f.len(), 1, "{f:#?}");
        assert!(f[0].summary.contains("1 worker for 2 CPUs while worker pid 101 is 99 % busy"), "{}", f[0].summary);
        assert_eq!(f[0].facts["worker_processes"], "1");
        // An idle single worker on 2 CPUs is fine.
        assert_eq!(run(&bundle(1, &conf, 1024, &[5])), Vec::new());
        let f = run(&bundle(5, &nginx_conf(768), 1024, &[]));
        assert!(f[0].summary.contains("5 workers for 2 CPUs"), "{}", f[0].summary);
    }

    #[test]
    fn default_worker_connections_and_master_c_file() {
        let conf = "worker_processes 2;\nevents { }\n";
        let b = bundle_with(&[
            ("proc/100/stat", &master_stat(100)),
            ("proc/100/cmdline", "nginx: master process nginx -c /etc/nginx/test.conf -p /tmp/x\0"),
            ("proc/101/stat", &worker_stat(101, 100, 0)),
            ("proc/101/cmdline", WORKER_CMDLINE),
            ("proc/101/limits", &limits(256)),
            ("proc/102/stat", &worker_stat(102, 100, 0)),
            ("proc/102/cmdline", "nginx: worker process is shutting down\0"),
            ("etc/nginx/test.conf", conf),
            ("etc/nginx/nginx.conf", &nginx_conf(100)),
        ]);
        let f = run(&b);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].facts["config"], "etc/nginx/test.conf");
        assert_eq!(f[0].facts["worker_connections"], 512);
        assert_eq!(f[0].facts["worker_connections_default"], true);
        assert_eq!(f[0].facts["workers"], 1);
        assert_eq!(f[0].facts["keepalive_timeout"], "75s (default)");
    }

    #[test]
    fn parser_tolerates_quotes_comments_and_broken_blocks() {
        let t = tokenize("a 'b;c' \"d\\\"e\" # f;\n{ g; }} ;");
        assert_eq!(
            t,
            vec![
                Token::Word("a".into()),
                Token::Word("b;c".into()),
                Token::Word("d\"e".into()),
                Token::Open,
                Token::Word("g".into()),
                Token::Semi,
                Token::Close,
                Token::Close,
                Token::Semi
            ]
        );
        // An include loop stops at the depth limit.
        let b = bundle_with(&[("etc/nginx/nginx.conf", "include nginx.conf;\nevents { worker_connections 9; }\n")]);
        let c = Config::load(&Input::new(&b), "etc/nginx/nginx.conf");
        assert_eq!(c.worker_connections.as_deref(), Some("9"));
        assert!(wildcard("*.conf", "a.conf") && !wildcard("*.conf", "a.conf~") && wildcard("a?c*", "abc"));
    }
}
