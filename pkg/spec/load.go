package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/goccy/go-yaml/lexer"
	"github.com/goccy/go-yaml/parser"
)

// StdinName is the file name diagnostics use for specs read from stdin.
const StdinName = "<stdin>"

// Load reads the -f arguments: files, directories (searched recursively for
// *.yaml and *.yml in lexical order, hidden files and directories skipped)
// and "-" for stdin. It returns the objects of all documents and every
// problem found, not just the first. Empty documents (only comments or
// `---`) are skipped. No defaults are applied.
func Load(paths []string, stdin io.Reader) ([]*Object, Diagnostics) {
	var files []*fileSource
	var diags Diagnostics
	readErr := func(name string, err error) {
		msg, hint := fmt.Sprintf("read %s: %v", name, err), ""
		switch {
		case errors.Is(err, fs.ErrNotExist):
			msg, hint = fmt.Sprintf("read %s: no such file or directory", name), "check the path given with -f"
		case errors.Is(err, fs.ErrPermission):
			msg, hint = fmt.Sprintf("read %s: permission denied", name), "check the file's permissions"
		case errors.Is(err, errTooLarge):
			d := fileTooLarge(name, -1)
			msg, hint = d.Message, d.Hint
		}
		diags = append(diags, &Diagnostic{File: name, Message: msg, Hint: hint, Severity: SeverityError})
	}
	for _, p := range paths {
		if p == "-" {
			if stdin == nil {
				readErr(StdinName, errors.New("no standard input"))
				continue
			}
			b, err := io.ReadAll(io.LimitReader(stdin, MaxFileBytes+1))
			if err != nil {
				readErr(StdinName, err)
				continue
			}
			if len(b) > MaxFileBytes {
				diags = append(diags, fileTooLarge(StdinName, -1))
				continue
			}
			files = append(files, ownedFileSource(StdinName, b))
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			readErr(p, err)
			continue
		}
		if !st.IsDir() {
			if st.Size() > MaxFileBytes {
				diags = append(diags, fileTooLarge(p, st.Size()))
				continue
			}
			b, err := readFile(p)
			if err != nil {
				readErr(p, err)
				continue
			}
			files = append(files, ownedFileSource(p, b))
			continue
		}
		found := 0
		err = filepath.WalkDir(p, func(path string, e fs.DirEntry, err error) error {
			if err != nil {
				readErr(path, err)
				if e != nil && e.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
			hidden := path != p && strings.HasPrefix(e.Name(), ".")
			if e.IsDir() {
				if hidden {
					return fs.SkipDir
				}
				return nil
			}
			ext := strings.ToLower(filepath.Ext(path))
			if hidden || (ext != ".yaml" && ext != ".yml") {
				return nil
			}
			found++
			if info, err := e.Info(); err == nil && info.Size() > MaxFileBytes {
				diags = append(diags, fileTooLarge(path, info.Size()))
				return nil
			}
			b, err := readFile(path)
			if err != nil {
				readErr(path, err)
				return nil
			}
			files = append(files, ownedFileSource(path, b))
			return nil
		})
		if err != nil {
			readErr(p, err)
		} else if found == 0 {
			diags = append(diags, &Diagnostic{File: p, Message: "no *.yaml or *.yml files in directory",
				Severity: SeverityWarning})
		}
	}
	objs, more := parseFiles(files)
	return objs, append(diags, more...)
}

// readFile reads a file of at most MaxFileBytes (it may grow after the
// size was checked; a special file may report no size).
func readFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size := 0
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		size = int(min(st.Size(), MaxFileBytes))
	}
	// Sized like os.ReadFile, so a large file is read without regrowing.
	buf := bytes.NewBuffer(make([]byte, 0, size+bytes.MinRead))
	if _, err := buf.ReadFrom(io.LimitReader(f, MaxFileBytes+1)); err != nil {
		return nil, err
	}
	if buf.Len() > MaxFileBytes {
		return nil, errTooLarge
	}
	return buf.Bytes(), nil
}

var errTooLarge = fmt.Errorf("file too large: more than %s per file", sizeText(MaxFileBytes))

// Parse is Load for one named buffer.
func Parse(file string, data []byte) ([]*Object, Diagnostics) {
	if len(data) > MaxFileBytes {
		return nil, Diagnostics{fileTooLarge(file, int64(len(data)))}
	}
	return parseFiles([]*fileSource{newFileSource(file, data)})
}

func newFileSource(name string, b []byte) *fileSource {
	return fileSourceOf(name, string(b))
}

// ownedFileSource is newFileSource for a buffer nobody else holds or
// changes (what Load read): its text is the buffer itself, not a copy.
func ownedFileSource(name string, b []byte) *fileSource {
	return fileSourceOf(name, unsafe.String(unsafe.SliceData(b), len(b)))
}

func fileSourceOf(name, s string) *fileSource {
	s = strings.TrimPrefix(s, "\ufeff") // a UTF-8 byte order mark is not content
	return &fileSource{name: name, data: s}
}

// chunk is one document's text: documents are parsed separately so that a
// syntax error in one does not hide the others (and goccy's parser is much
// faster on many small inputs than on one large one).
type chunk struct {
	file       *fileSource
	start, end int // byte offsets into file.data
	base       int // lines before start
}

// chunkResult is what parsing one chunk produced.
type chunkResult struct {
	objs  []*Object
	diags Diagnostics
}

// parseFiles splits every file into documents, parses and decodes them in
// parallel and returns the results in input order.
func parseFiles(files []*fileSource) ([]*Object, Diagnostics) {
	var chunks []chunk
	var encDiags Diagnostics
	for _, f := range files {
		d, ok := checkEncoding(f)
		encDiags = append(encDiags, d...)
		if ok {
			chunks = append(chunks, splitDocuments(f)...)
		}
	}
	results := make([]chunkResult, len(chunks))
	workers := min(runtime.GOMAXPROCS(0), (len(chunks)+15)/16)
	if workers <= 1 {
		arena := &fastArena{}
		for i, c := range chunks {
			results[i] = parseChunk(c, arena)
		}
	} else {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				arena := &fastArena{} // one per worker: documents reuse its memory
				for {
					i := int(next.Add(1)) - 1
					if i >= len(chunks) {
						return
					}
					results[i] = parseChunk(chunks[i], arena)
				}
			})
		}
		wg.Wait()
	}
	var objs []*Object
	diags := encDiags
	for _, r := range results {
		objs = append(objs, r.objs...)
		diags = append(diags, r.diags...)
	}
	return objs, diags
}

// splitDocuments cuts a file at its `---` document markers, dropping
// documents with no content. A chunk of only directives (%YAML) stays with
// the document after it.
func splitDocuments(f *fileSource) []chunk {
	var out []chunk
	data := f.data
	start, startLine := 0, 0
	content, directives := false, false
	line := 0
	flush := func(end int) {
		if content {
			out = append(out, chunk{file: f, start: start, end: end, base: startLine})
		}
	}
	for off := 0; off < len(data); line++ {
		nl := strings.IndexByte(data[off:], '\n')
		end := len(data)
		if nl >= 0 {
			end = off + nl + 1
		}
		text := data[off:end]
		if isDocMarker(text) && off > 0 && !(directives && !content) {
			flush(off)
			start, startLine, content, directives = off, line, false, false
		}
		switch t := strings.TrimSpace(text); {
		case t == "" || t[0] == '#':
		case text[0] == '%':
			directives = true
		case isDocMarker(text):
			rest := strings.TrimSpace(text[3:])
			if rest != "" && rest[0] != '#' {
				content = true
			}
		case strings.HasPrefix(text, "...") && strings.TrimSpace(text[3:]) == "":
		default:
			content = true
		}
		off = end
	}
	flush(len(data))
	return out
}

// isDocMarker reports whether a line starts with the `---` document marker.
func isDocMarker(line string) bool {
	if !strings.HasPrefix(line, "---") {
		return false
	}
	return len(line) == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r' || line[3] == '\n'
}

// goccyOnly turns the fast parser off (tests compare both paths).
var goccyOnly = false

// parseChunk parses one document's text and decodes its objects, using
// arena for the fast parser's AST.
func parseChunk(c chunk, arena *fastArena) (res chunkResult) {
	defer func() {
		// goccy's parser is third-party code fed with user input; a panic in
		// it must become a diagnostic, not crash the CLI or the daemon.
		if r := recover(); r != nil {
			line, col, text := c.file.clamp(c.base+1, 1)
			res = chunkResult{diags: Diagnostics{{
				File: c.file.name, Line: line, Column: col, SourceLine: text, Severity: SeverityError,
				Message: "invalid YAML: the parser failed on this document",
			}}}
		}
	}()
	if !goccyOnly {
		if body, ok := fastParse(c.file.data[c.start:c.end], arena); ok {
			res.objs, res.diags = decodeDocumentIn(c, 0, body, arena)
			return res
		}
	}
	tokens := lexer.Tokenize(c.file.data[c.start:c.end])
	af, err := parser.Parse(tokens, 0, parser.AllowDuplicateMapKey())
	if err != nil {
		res.diags = append(res.diags, syntaxDiagnostic(c, err))
		return res
	}
	for i, doc := range af.Docs {
		if doc == nil || doc.Body == nil {
			continue
		}
		objs, diags := decodeDocumentIn(c, i, doc.Body, arena)
		res.objs = append(res.objs, objs...)
		res.diags = append(res.diags, diags...)
	}
	return res
}
