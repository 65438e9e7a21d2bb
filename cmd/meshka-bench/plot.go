package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strconv"
)

// The report's charts are drawn here with the standard library: a few
// line charts do not justify a plotting dependency in the module.

// chart is a line chart of one or more series over a shared x axis.
type chart struct {
	title, xLabel, yLabel string
	// xLog and yLog draw the axis in powers of ten (fan-out's N and
	// upstream bytes span three decades).
	xLog, yLog bool
	// xNames, when set, label the x positions 0..len-1 by name instead of
	// by value (latency percentiles).
	xNames []string
	// yZero starts a linear y axis at zero, so ratios are not exaggerated.
	yZero  bool
	series []series
}

type series struct {
	name  string
	color color.RGBA
	x, y  []float64
}

var (
	colDirect = color.RGBA{0x1f, 0x77, 0xb4, 0xff} // blue
	colMeshka = color.RGBA{0xd6, 0x27, 0x28, 0xff} // red
	colExtra  = color.RGBA{0x2c, 0xa0, 0x2c, 0xff} // green
	colAxis   = color.RGBA{0x30, 0x30, 0x30, 0xff}
	colGrid   = color.RGBA{0xe0, 0xe0, 0xe0, 0xff}
	colWhite  = color.RGBA{0xff, 0xff, 0xff, 0xff}
)

const (
	chartW, chartH = 960, 600
	// glyphs are 5x7 pixels scaled by fontScale, on a 6-column pitch.
	fontScale = 2
	glyphW    = 6 * fontScale
	glyphH    = 8 * fontScale
	padLeft   = 110
	padRight  = 30
	padTop    = 60
	padBottom = 90
)

// writePNG renders c into path, creating its directory.
func (c chart) writePNG(path string) error {
	img := c.render()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

func (c chart) render() *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, chartW, chartH))
	fill(img, img.Bounds(), colWhite)
	x0, x1 := padLeft, chartW-padRight
	y0, y1 := chartH-padBottom, padTop // y grows downwards in the image

	xmin, xmax, ymin, ymax := c.bounds()
	tx := axis{min: xmin, max: xmax, log: c.xLog, lo: float64(x0), hi: float64(x1)}
	ty := axis{min: ymin, max: ymax, log: c.yLog, lo: float64(y0), hi: float64(y1)}

	// Grid and tick labels.
	for _, v := range c.yTicks(ymin, ymax) {
		py := int(ty.at(v))
		hline(img, x0, x1, py, colGrid)
		s := fmtTick(v)
		drawText(img, x0-10-textWidth(s), py-glyphH/2+2, s, colAxis, false)
	}
	for i, v := range c.xTicks(xmin, xmax) {
		px := int(tx.at(v))
		vline(img, px, y1, y0, colGrid)
		s := fmtTick(v)
		if c.xNames != nil {
			s = c.xNames[i]
		}
		drawText(img, px-textWidth(s)/2, y0+10, s, colAxis, false)
	}
	// Axes.
	hline(img, x0, x1, y0, colAxis)
	vline(img, x0, y1, y0, colAxis)
	// Labels.
	drawText(img, (chartW-textWidth(c.title))/2, 18, c.title, colAxis, false)
	drawText(img, (x0+x1-textWidth(c.xLabel))/2, y0+40, c.xLabel, colAxis, false)
	drawText(img, 14, (y0+y1+textWidth(c.yLabel))/2, c.yLabel, colAxis, true)

	// Series, with a marker at every point.
	for _, s := range c.series {
		for i := range s.x {
			if math.IsNaN(s.y[i]) {
				continue
			}
			px, py := tx.at(s.x[i]), ty.at(s.y[i])
			disc(img, int(px), int(py), 5, s.color)
			if i > 0 && !math.IsNaN(s.y[i-1]) {
				line(img, tx.at(s.x[i-1]), ty.at(s.y[i-1]), px, py, s.color)
			}
		}
	}
	// Legend, top left inside the plot area.
	lx, ly := x0+20, y1+12
	for _, s := range c.series {
		fill(img, image.Rect(lx, ly+4, lx+30, ly+9), s.color)
		drawText(img, lx+40, ly, s.name, colAxis, false)
		ly += glyphH + 8
	}
	return img
}

// bounds is the data range padded for drawing; log axes snap to decades.
func (c chart) bounds() (xmin, xmax, ymin, ymax float64) {
	xmin, ymin = math.Inf(1), math.Inf(1)
	xmax, ymax = math.Inf(-1), math.Inf(-1)
	for _, s := range c.series {
		for i := range s.x {
			if math.IsNaN(s.y[i]) {
				continue
			}
			xmin, xmax = math.Min(xmin, s.x[i]), math.Max(xmax, s.x[i])
			ymin, ymax = math.Min(ymin, s.y[i]), math.Max(ymax, s.y[i])
		}
	}
	if math.IsInf(xmin, 1) {
		return 0, 1, 0, 1
	}
	if c.xNames != nil {
		xmin, xmax = -0.5, float64(len(c.xNames))-0.5
	} else if c.xLog {
		xmin, xmax = math.Pow(10, math.Floor(math.Log10(xmin))), math.Pow(10, math.Ceil(math.Log10(xmax)))
	}
	if xmax <= xmin {
		xmax = xmin + 1
	}
	if c.yLog {
		ymin, ymax = math.Pow(10, math.Floor(math.Log10(ymin))), math.Pow(10, math.Ceil(math.Log10(ymax)))
		if ymax <= ymin {
			ymax = ymin * 10
		}
		return
	}
	if c.yZero {
		ymin = math.Min(0, ymin)
	}
	if ymax <= ymin {
		ymax = ymin + 1
	}
	step := niceStep((ymax - ymin) / 6)
	ymin = math.Floor(ymin/step) * step
	ymax = math.Ceil(ymax*1.05/step) * step
	return
}

func (c chart) xTicks(lo, hi float64) []float64 {
	if c.xNames != nil {
		out := make([]float64, len(c.xNames))
		for i := range out {
			out[i] = float64(i)
		}
		return out
	}
	return ticks(lo, hi, c.xLog)
}

func (c chart) yTicks(lo, hi float64) []float64 { return ticks(lo, hi, c.yLog) }

func ticks(lo, hi float64, log bool) []float64 {
	var out []float64
	if log {
		for v := lo; v <= hi*1.0001; v *= 10 {
			out = append(out, v)
		}
		return out
	}
	step := niceStep((hi - lo) / 6)
	for v := math.Ceil(lo/step) * step; v <= hi+step/1e6; v += step {
		out = append(out, v)
	}
	return out
}

// niceStep rounds a raw tick step to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	switch f := raw / p; {
	case f <= 1:
		return p
	case f <= 2:
		return 2 * p
	case f <= 5:
		return 5 * p
	}
	return 10 * p
}

func fmtTick(v float64) string {
	if v == 0 {
		return "0"
	}
	if math.Abs(v) >= 1e4 || math.Abs(v) < 1e-3 {
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// axis maps data values to pixel positions.
type axis struct {
	min, max float64
	log      bool
	lo, hi   float64 // pixels
}

func (a axis) at(v float64) float64 {
	f := (v - a.min) / (a.max - a.min)
	if a.log {
		f = (math.Log10(v) - math.Log10(a.min)) / (math.Log10(a.max) - math.Log10(a.min))
	}
	return a.lo + f*(a.hi-a.lo)
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}

func hline(img *image.RGBA, x0, x1, y int, c color.RGBA) {
	fill(img, image.Rect(x0, y, x1+1, y+1), c)
}

func vline(img *image.RGBA, x, y0, y1 int, c color.RGBA) {
	fill(img, image.Rect(x, y0, x+1, y1+1), c)
}

func disc(img *image.RGBA, cx, cy, r int, c color.RGBA) {
	for y := -r; y <= r; y++ {
		for x := -r; x <= r; x++ {
			if x*x+y*y <= r*r {
				img.SetRGBA(cx+x, cy+y, c)
			}
		}
	}
}

// line draws a 3-pixel-wide segment by stepping along its longer axis.
func line(img *image.RGBA, x0, y0, x1, y1 float64, c color.RGBA) {
	n := int(math.Max(math.Abs(x1-x0), math.Abs(y1-y0))) + 1
	for i := 0; i <= n; i++ {
		t := float64(i) / float64(n)
		x, y := int(x0+t*(x1-x0)), int(y0+t*(y1-y0))
		fill(img, image.Rect(x-1, y-1, x+2, y+2), c)
	}
}

func textWidth(s string) int { return len(s) * glyphW }

// drawText writes ASCII text with its top-left corner at (x, y); rotated
// text runs upwards from (x, y), for the y-axis label.
func drawText(img *image.RGBA, x, y int, s string, c color.RGBA, rotated bool) {
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch < 0x20 || ch > 0x7e {
			ch = '?'
		}
		g := font5x7[int(ch-0x20)*5:][:5]
		for col := 0; col < 5; col++ {
			bits := g[col]
			for row := 0; row < 8; row++ {
				if bits&(1<<row) == 0 {
					continue
				}
				px, py := x+i*glyphW+col*fontScale, y+row*fontScale
				if rotated {
					px, py = x+row*fontScale, y-i*glyphW-col*fontScale-fontScale
				}
				fill(img, image.Rect(px, py, px+fontScale, py+fontScale), c)
			}
		}
	}
}

// font5x7 is the classic 5x7 LCD font for ASCII 0x20-0x7e: five columns
// per glyph, bit 0 at the top.
var font5x7 = []byte{
	0x00, 0x00, 0x00, 0x00, 0x00, // space
	0x00, 0x00, 0x5f, 0x00, 0x00, // !
	0x00, 0x07, 0x00, 0x07, 0x00, // "
	0x14, 0x7f, 0x14, 0x7f, 0x14, // #
	0x24, 0x2a, 0x7f, 0x2a, 0x12, // $
	0x23, 0x13, 0x08, 0x64, 0x62, // %
	0x36, 0x49, 0x55, 0x22, 0x50, // &
	0x00, 0x05, 0x03, 0x00, 0x00, // '
	0x00, 0x1c, 0x22, 0x41, 0x00, // (
	0x00, 0x41, 0x22, 0x1c, 0x00, // )
	0x14, 0x08, 0x3e, 0x08, 0x14, // *
	0x08, 0x08, 0x3e, 0x08, 0x08, // +
	0x00, 0x50, 0x30, 0x00, 0x00, // ,
	0x08, 0x08, 0x08, 0x08, 0x08, // -
	0x00, 0x60, 0x60, 0x00, 0x00, // .
	0x20, 0x10, 0x08, 0x04, 0x02, // /
	0x3e, 0x51, 0x49, 0x45, 0x3e, // 0
	0x00, 0x42, 0x7f, 0x40, 0x00, // 1
	0x42, 0x61, 0x51, 0x49, 0x46, // 2
	0x21, 0x41, 0x45, 0x4b, 0x31, // 3
	0x18, 0x14, 0x12, 0x7f, 0x10, // 4
	0x27, 0x45, 0x45, 0x45, 0x39, // 5
	0x3c, 0x4a, 0x49, 0x49, 0x30, // 6
	0x01, 0x71, 0x09, 0x05, 0x03, // 7
	0x36, 0x49, 0x49, 0x49, 0x36, // 8
	0x06, 0x49, 0x49, 0x29, 0x1e, // 9
	0x00, 0x36, 0x36, 0x00, 0x00, // :
	0x00, 0x56, 0x36, 0x00, 0x00, // ;
	0x08, 0x14, 0x22, 0x41, 0x00, // <
	0x14, 0x14, 0x14, 0x14, 0x14, // =
	0x00, 0x41, 0x22, 0x14, 0x08, // >
	0x02, 0x01, 0x51, 0x09, 0x06, // ?
	0x32, 0x49, 0x79, 0x41, 0x3e, // @
	0x7e, 0x11, 0x11, 0x11, 0x7e, // A
	0x7f, 0x49, 0x49, 0x49, 0x36, // B
	0x3e, 0x41, 0x41, 0x41, 0x22, // C
	0x7f, 0x41, 0x41, 0x22, 0x1c, // D
	0x7f, 0x49, 0x49, 0x49, 0x41, // E
	0x7f, 0x09, 0x09, 0x09, 0x01, // F
	0x3e, 0x41, 0x49, 0x49, 0x7a, // G
	0x7f, 0x08, 0x08, 0x08, 0x7f, // H
	0x00, 0x41, 0x7f, 0x41, 0x00, // I
	0x20, 0x40, 0x41, 0x3f, 0x01, // J
	0x7f, 0x08, 0x14, 0x22, 0x41, // K
	0x7f, 0x40, 0x40, 0x40, 0x40, // L
	0x7f, 0x02, 0x0c, 0x02, 0x7f, // M
	0x7f, 0x04, 0x08, 0x10, 0x7f, // N
	0x3e, 0x41, 0x41, 0x41, 0x3e, // O
	0x7f, 0x09, 0x09, 0x09, 0x06, // P
	0x3e, 0x41, 0x51, 0x21, 0x5e, // Q
	0x7f, 0x09, 0x19, 0x29, 0x46, // R
	0x46, 0x49, 0x49, 0x49, 0x31, // S
	0x01, 0x01, 0x7f, 0x01, 0x01, // T
	0x3f, 0x40, 0x40, 0x40, 0x3f, // U
	0x1f, 0x20, 0x40, 0x20, 0x1f, // V
	0x3f, 0x40, 0x38, 0x40, 0x3f, // W
	0x63, 0x14, 0x08, 0x14, 0x63, // X
	0x07, 0x08, 0x70, 0x08, 0x07, // Y
	0x61, 0x51, 0x49, 0x45, 0x43, // Z
	0x00, 0x7f, 0x41, 0x41, 0x00, // [
	0x02, 0x04, 0x08, 0x10, 0x20, // backslash
	0x00, 0x41, 0x41, 0x7f, 0x00, // ]
	0x04, 0x02, 0x01, 0x02, 0x04, // ^
	0x40, 0x40, 0x40, 0x40, 0x40, // _
	0x00, 0x01, 0x02, 0x04, 0x00, // `
	0x20, 0x54, 0x54, 0x54, 0x78, // a
	0x7f, 0x48, 0x44, 0x44, 0x38, // b
	0x38, 0x44, 0x44, 0x44, 0x20, // c
	0x38, 0x44, 0x44, 0x48, 0x7f, // d
	0x38, 0x54, 0x54, 0x54, 0x18, // e
	0x08, 0x7e, 0x09, 0x01, 0x02, // f
	0x0c, 0x52, 0x52, 0x52, 0x3e, // g
	0x7f, 0x08, 0x04, 0x04, 0x78, // h
	0x00, 0x44, 0x7d, 0x40, 0x00, // i
	0x20, 0x40, 0x44, 0x3d, 0x00, // j
	0x7f, 0x10, 0x28, 0x44, 0x00, // k
	0x00, 0x41, 0x7f, 0x40, 0x00, // l
	0x7c, 0x04, 0x18, 0x04, 0x78, // m
	0x7c, 0x08, 0x04, 0x04, 0x78, // n
	0x38, 0x44, 0x44, 0x44, 0x38, // o
	0x7c, 0x14, 0x14, 0x14, 0x08, // p
	0x08, 0x14, 0x14, 0x18, 0x7c, // q
	0x7c, 0x08, 0x04, 0x04, 0x08, // r
	0x48, 0x54, 0x54, 0x54, 0x20, // s
	0x04, 0x3f, 0x44, 0x40, 0x20, // t
	0x3c, 0x40, 0x40, 0x20, 0x7c, // u
	0x1c, 0x20, 0x40, 0x20, 0x1c, // v
	0x3c, 0x40, 0x30, 0x40, 0x3c, // w
	0x44, 0x28, 0x10, 0x28, 0x44, // x
	0x0c, 0x50, 0x50, 0x50, 0x3c, // y
	0x44, 0x64, 0x54, 0x4c, 0x44, // z
	0x00, 0x08, 0x36, 0x41, 0x00, // {
	0x00, 0x00, 0x7f, 0x00, 0x00, // |
	0x00, 0x41, 0x36, 0x08, 0x00, // }
	0x10, 0x08, 0x08, 0x10, 0x08, // ~
}

// plotFile names a chart file under the report's docs/bench directory and
// returns its path on disk and its link from the report.
func (b *bench) plotFile(name string) (disk, link string) {
	link = "docs/bench/" + name
	return filepath.Join(filepath.Dir(b.opts.out), filepath.FromSlash(link)), link
}

// savePlot writes c and returns the report's reference to it; a failure
// is a note, not a failed run.
func (b *bench) savePlot(s *section, name, alt string, c chart) {
	disk, link := b.plotFile(name)
	if err := c.writePNG(disk); err != nil {
		s.notes = append(s.notes, fmt.Sprintf("Plot %s not written: %v", name, err))
		return
	}
	s.plots = append(s.plots, plot{path: link, alt: alt})
}
