package plugin_test

import (
	"fmt"

	"github.com/parallax-ipc/parallax/pipeline"
	"github.com/parallax-ipc/parallax/plugin"
)

// A descriptor registered statically, as Load does for a .so file's
// exported Parallax variable.
func ExampleRegister() {
	d := &plugin.Descriptor{
		ABI: plugin.ABIVersion, Name: "demo", Version: "0.1.0",
		Elements: []pipeline.Factory{{Name: "nothing", Kind: "sink",
			New: func(*pipeline.Props) (pipeline.Element, error) { return nil, nil }}},
	}
	var r pipeline.Registry
	info, err := plugin.Register("static", d, &r)
	fmt.Println(info.Name, info.Version, info.Elements, err)
	f, _ := r.Lookup("nothing")
	fmt.Println(f.Origin)

	_, err = plugin.Register("static", &plugin.Descriptor{ABI: 7, Name: "old"}, &r)
	fmt.Println(err)
	// Output:
	// demo 0.1.0 [nothing] <nil>
	// plugin demo
	// load plugin static ("old"): plugin ABI version mismatch: plugin has ABI version 7, this host supports version 1 (rebuild the plugin against this Parallax)
}

// Loading every plugin of $PARALLAX_PLUGIN_PATH into the default registry.
func ExampleLoadEnv() {
	infos, err := plugin.LoadEnv(nil)
	if err != nil {
		fmt.Println("some plugins failed:", err)
	}
	for _, i := range infos {
		fmt.Println(i.Name, i.Version, i.Elements)
	}
}
