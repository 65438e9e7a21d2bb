package config

import "testing"

func FuzzParse(f *testing.F) {
	f.Add([]byte(""))
	f.Add([]byte(fullFile))
	f.Add([]byte("node:\n  id: -1\n  listne: x\nkafka: {max_frame_bytes: 1 GiB}\n"))
	f.Add([]byte("upstream:\n  brokers: [\"${MESHKA_FUZZ:-k:9092}\", $$x]\n  request_timeout: 10\n"))
	f.Add([]byte("cache:\n  bootstrap: &a [*a, \"x y\", x]\n---\n"))
	f.Add([]byte("log: ${UNTERMINATED\n# ${IN_COMMENT}\n"))
	f.Add([]byte("bindings:\n  line: &l {listen: \"${H:-x}:1\", tls: {cert: 1}}\n  b: *l\n  c:\n  d: [1]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data)
		// A binding decodes whatever section Parse kept.
		for name := range cfg.Bindings {
			var v lineSection
			if err := cfg.Binding(name).Decode(&v); err != nil {
				if _, ok := err.(Errors); !ok {
					t.Fatalf("Decode of bindings.%s returned %T, want Errors", name, err)
				}
			}
		}
		if err != nil {
			if _, ok := err.(Errors); !ok {
				t.Fatalf("Parse returned %T, want Errors", err)
			}
			return
		}
		if errs := cfg.Validate(); len(errs) != 0 {
			t.Fatalf("Parse accepted a config that does not validate:\n%v\ninput:\n%q", errs, data)
		}
	})
}
