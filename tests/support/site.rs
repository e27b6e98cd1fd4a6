//! The static site the end-to-end tests move, as the playbooks they write say it: its
//! `image` step (the tree pulled by step `code`, served by busybox's httpd) and its `web`
//! step (that image deployed, its health checked over HTTP). One text for every test, so
//! an edit a test makes to it (`edit_file`) finds the same lines everywhere.

/// Step `image`: step `code`'s tree in `/www` of an image on `base`, served on 8080 by
/// httpd as nobody.
pub fn image_step(base: &str) -> String {
    format!(
        "  - id: image\n    build:\n      base: {base}\n      copy: {{ code: /www }}\n      run: [\"chmod -R a+rX /www\"]\n      user: \"65534\"\n      cmd: [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n      expose: [8080]\n"
    )
}

/// Step `web`: step `image`'s image as the container `name`, published on 127.0.0.1:`port`,
/// healthy once `http://127.0.0.1:PORT{path}` answers, within `timeout`; `extra` holds more
/// of the step's fields (each line indented by six).
pub fn web_step(name: &str, port: u16, path: &str, timeout: &str, extra: &str) -> String {
    format!(
        "  - id: web\n    deploy:\n      image: image\n      name: {name}\n      ports: [\"127.0.0.1:{port}:8080\"]\n{extra}      health:\n        http: http://127.0.0.1:{port}{path}\n        timeout: {timeout}\n        interval: 200ms\n"
    )
}
