// Command go-bulk indexes generated log documents with opensearch-go's BulkIndexer and prints
// one JSON line with its throughput and its own CPU time, for bench/bulk_load.py.
//
// The documents are built before the clock starts; the timed part is what a Go program
// indexing its own structs does: encode each one to JSON and hand it to the BulkIndexer.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/opensearch-project/opensearch-go/v4"
	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
	"github.com/opensearch-project/opensearch-go/v4/opensearchutil"
)

type host struct {
	Name string `json:"name"`
	IP   string `json:"ip"`
}

type httpInfo struct {
	Method string `json:"method"`
	Status int    `json:"status"`
	Bytes  int    `json:"bytes"`
}

// logDoc has the shape of bench/bulk_load.py's log_doc, field for field.
type logDoc struct {
	Timestamp  string   `json:"@timestamp"`
	Host       host     `json:"host"`
	Service    string   `json:"service"`
	Level      string   `json:"level"`
	Message    string   `json:"message"`
	HTTP       httpInfo `json:"http"`
	TraceID    string   `json:"trace_id"`
	UserID     int      `json:"user_id"`
	DurationMS float64  `json:"duration_ms"`
}

var (
	services = []string{"checkout", "search", "auth", "payments", "catalog"}
	levels   = []string{"info", "info", "info", "warn", "error"}
	methods  = []string{"GET", "GET", "POST"}
	statuses = []int{200, 200, 200, 201, 404, 500}
)

func makeDoc(i int) logDoc {
	u := uint64(i)
	status := statuses[i%len(statuses)]
	return logDoc{
		Timestamp: fmt.Sprintf("2024-05-%02dT%02d:%02d:%02d.%03dZ",
			1+i/86400000%28, i/3600000%24, i/60000%60, i/1000%60, i%1000),
		Host:    host{Name: "web-" + strconv.Itoa(i%50), IP: fmt.Sprintf("10.0.%d.%d", i%7, i%250)},
		Service: services[i%5],
		Level:   levels[(i/5)%5],
		Message: fmt.Sprintf("%s /api/v1/orders/%d %d in %dms", methods[i%3], i, status, i%300),
		HTTP:    httpInfo{Method: methods[i%3], Status: status, Bytes: 5123 + i%1000},
		TraceID: fmt.Sprintf("%016x%016x", u*0x9E3779B97F4A7C15, u*0xC2B2AE3D27D4EB4F),
		UserID:  i % 100000,
		// The same float for the same i as Python's (i % 3000) / 10.
		DurationMS: float64(i%3000) / 10,
	}
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

func main() {
	url := flag.String("url", "http://127.0.0.1:9200", "node URL")
	index := flag.String("index", "bench", "index")
	n := flag.Int("n", 1000000, "documents")
	workers := flag.Int("workers", 2, "BulkIndexer NumWorkers")
	flushBytes := flag.Int("flush-bytes", 5_000_000, "BulkIndexer FlushBytes")
	flag.Parse()

	client, err := opensearchapi.NewClient(opensearchapi.Config{Client: opensearch.Config{
		Addresses: []string{*url},
		// One idle connection per worker, so none is closed and reopened between batches.
		Transport: &http.Transport{MaxIdleConnsPerHost: *workers + 2}, //nolint:SSG202 // a benchmark on loopback
	}})
	if err != nil {
		panic(err)
	}
	docs := make([]logDoc, *n)
	for i := range docs {
		docs[i] = makeDoc(i)
	}
	var failed atomic.Int64
	var firstFailure atomic.Value
	onFailure := func(ctx context.Context, item opensearchutil.BulkIndexerItem,
		res opensearchapi.BulkRespItem, err error) {
		failed.Add(1)
		reason := fmt.Sprintf("status %d", res.Status)
		if err != nil {
			reason = err.Error()
		} else if res.Error != nil {
			reason = fmt.Sprintf("%d %s: %s", res.Status, res.Error.Type, res.Error.Reason)
		}
		firstFailure.CompareAndSwap(nil, reason)
	}
	indexer, err := opensearchutil.NewBulkIndexer(opensearchutil.BulkIndexerConfig{
		Client:        client,
		Index:         *index,
		NumWorkers:    *workers,
		FlushBytes:    *flushBytes,
		FlushInterval: 30 * time.Second,
		// A failed flush (the whole batch) is a failure too, not only a rejected item.
		OnError: func(_ context.Context, err error) {
			firstFailure.CompareAndSwap(nil, "flush: "+err.Error())
		},
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	cpu0, t0 := cpuSeconds(), time.Now()
	for i := range docs {
		body, err := json.Marshal(&docs[i])
		if err != nil {
			panic(err)
		}
		err = indexer.Add(ctx, opensearchutil.BulkIndexerItem{
			Action:     "index",
			DocumentID: strconv.Itoa(i),
			Body:       bytes.NewReader(body),
			OnFailure:  onFailure,
		})
		if err != nil {
			panic(err)
		}
	}
	if err := indexer.Close(ctx); err != nil {
		panic(err)
	}
	wall, cpu := time.Since(t0).Seconds(), cpuSeconds()-cpu0
	stats := indexer.Stats()
	out, _ := json.Marshal(map[string]any{
		"wall_s":        wall,
		"cpu_s":         cpu,
		"indexed":       stats.NumFlushed,
		"failed":        failed.Load(),
		"requests":      stats.NumRequests,
		"first_failure": firstFailure.Load(),
	})
	fmt.Println(string(out))
	if failed.Load() > 0 {
		os.Exit(1)
	}
}
