package main

// Hibernation in place. The node agent checkpoints a container with `runc
// checkpoint` (which ends it) and keeps the images on the node; before it does,
// it writes a hibernation record for the pod's sandbox and container name. The
// kubelet, seeing the container gone, creates it again at once: this wrapper
// finds the record and creates a holder instead, a container whose only process
// is this binary, idle, holding no memory, so the pod stays Running on its node
// with nothing in it to wake. When traffic comes, the agent marks the record
// waking and kills the holder; the kubelet creates the container once more, and
// this time the wrapper restores it from the kept images.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
)

const (
	// hibernationDir, under the images directory, holds one record per hibernated container.
	hibernationDir = ".hibernation"
	// dumpedMarker is written by the node agent once a dump it keeps on this node is complete.
	dumpedMarker = ".ferry-dumped"
	// holderName is where the holder binary (this one) is mounted in its container.
	holderName = ".ferry-hold"
	// sandboxIDAnnotation names the pod sandbox a container belongs to (containerd, CRI-O).
	sandboxIDAnnotation     = "io.kubernetes.cri.sandbox-id"
	crioSandboxIDAnnotation = "io.kubernetes.cri-o.SandboxID"
	// phaseWaking is the record's phase once the agent asked for the container back.
	phaseWaking = "waking"
)

// hibernationRecord is what the node agent and this wrapper share about one hibernated container.
type hibernationRecord struct {
	// Image is the image id the container was checkpointed into.
	Image string `json:"image"`
	// Phase is "hibernating" until the agent wants the container back, then "waking".
	Phase string `json:"phase"`
	// Holder is the id of the holder container this wrapper created meanwhile.
	Holder string `json:"holder,omitempty"`
}

// maybeHibernated handles the create of a container the node agent hibernated:
// a holder while it sleeps, a restore once it is woken. It reports whether it
// handled the create.
func maybeHibernated(runc string, args []string, at int) (bool, error) {
	opts := parseCreate(args[at+1:])
	if opts.id == "" {
		return false, nil
	}
	path, err := hibernationRecordPath(opts.bundle)
	if err != nil || path == "" {
		return false, err
	}
	raw, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return false, nil
	}
	if err != nil {
		return true, err
	}
	var record hibernationRecord
	if err := json.Unmarshal(raw, &record); err != nil {
		return true, fmt.Errorf("hibernation record %s: %w", path, err)
	}
	if !imageID.MatchString(record.Image) {
		return true, fmt.Errorf("hibernation record %s names image %q, which is not an image id", path, record.Image)
	}
	if record.Phase == phaseWaking {
		done, err := restoreOnce(runc, args, at, opts, record.Image, dumpedMarker)
		// Restored or failed, the record has served: a later create starts fresh.
		os.Remove(path)
		return done, err
	}
	if err := makeHolder(opts.bundle); err != nil {
		return true, err
	}
	record.Holder = opts.id
	if err := writeAtomically(path, record); err != nil {
		return true, err
	}
	passThrough(runc, args)
	return true, nil
}

// hibernationRecordPath is where the record of the bundle's container would be, or "" for a container outside a pod.
func hibernationRecordPath(bundle string) (string, error) {
	raw, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return "", fmt.Errorf("reading the bundle's config.json: %w", err)
	}
	var spec struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(raw, &spec); err != nil {
		return "", fmt.Errorf("parsing the bundle's config.json: %w", err)
	}
	sandbox := spec.Annotations[sandboxIDAnnotation]
	if sandbox == "" {
		sandbox = spec.Annotations[crioSandboxIDAnnotation]
	}
	name := spec.Annotations[containerNameAnnotation]
	if name == "" {
		name = spec.Annotations[crioContainerNameAnnotation]
	}
	if sandbox == "" || name == "" || filepath.Base(sandbox) != sandbox || filepath.Base(name) != name {
		return "", nil
	}
	return recordPath(imagesDir(), sandbox, name), nil
}

// recordPath is the record of container `name` in pod sandbox `sandbox`.
func recordPath(images, sandbox, name string) string {
	return filepath.Join(images, hibernationDir, sandbox+"."+name+".json")
}

// makeHolder rewrites the bundle's spec so that its process is this binary, idle:
// the image's own command would start an empty store and take the traffic meant
// for the hibernated one.
func makeHolder(bundle string) error {
	file := filepath.Join(bundle, "config.json")
	raw, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var spec map[string]any
	if err := json.Unmarshal(raw, &spec); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	process, _ := spec["process"].(map[string]any)
	if process == nil {
		return fmt.Errorf("%s has no process", file)
	}
	process["args"] = []any{"/" + holderName}
	mounts, _ := spec["mounts"].([]any)
	spec["mounts"] = append(mounts, map[string]any{
		"destination": "/" + holderName,
		"type":        "bind",
		"source":      self,
		"options":     []any{"rbind", "ro", "nosuid", "nodev"},
	})
	out, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	return os.WriteFile(file, out, 0o600)
}

// hold is the holder's process: it does nothing until told to stop. As a
// container's first process it gets no signal it did not ask for, so it asks.
func hold() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	os.Exit(0)
}

func writeAtomically(path string, value any) error {
	raw, err := json.Marshal(value)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
