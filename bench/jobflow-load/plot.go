package main

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// The plot is drawn with the standard library's image packages and
// golang.org/x/image's built-in bitmap font: no plotting library needed.

var palette = []color.RGBA{
	{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255},
	{148, 103, 189, 255}, {140, 86, 75, 255}, {227, 119, 194, 255}, {127, 127, 127, 255},
	{188, 189, 34, 255}, {23, 190, 207, 255},
}

type canvas struct{ img *image.RGBA }

func (c canvas) text(x, y int, s string, col color.Color) {
	d := font.Drawer{Dst: c.img, Src: image.NewUniform(col), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func (c canvas) line(x0, y0, x1, y1 int, col color.Color, width int) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	err := dx + dy
	for {
		for w := 0; w < width; w++ {
			for v := 0; v < width; v++ {
				c.img.Set(x0+w-width/2, y0+v-width/2, col)
			}
		}
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * err
		if e2 >= dy {
			err += dy
			x0 += sx
		}
		if e2 <= dx {
			err += dx
			y0 += sy
		}
	}
}

func abs(v int) int { return max(v, -v) }

func sign(v int) int {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}

// panel is one chart area with its axes.
type panel struct {
	c              canvas
	x0, y0, w, h   int // plot area (y0 = top)
	tmax, vmax     float64
	title, ylabel  string
	integerTicks   bool
	loadEndSeconds float64
}

func (p panel) px(t float64) int { return p.x0 + int(t/p.tmax*float64(p.w)) }
func (p panel) py(v float64) int { return p.y0 + p.h - int(v/p.vmax*float64(p.h)) }

func (p panel) axes() {
	grid := color.RGBA{225, 225, 225, 255}
	black := color.RGBA{0, 0, 0, 255}
	step := niceStep(p.vmax, 5)
	if p.integerTicks {
		step = math.Max(1, math.Round(step))
	}
	for v := 0.0; v <= p.vmax+1e-9; v += step {
		y := p.py(v)
		p.c.line(p.x0, y, p.x0+p.w, y, grid, 1)
		lbl := fmt.Sprintf("%g", v)
		p.c.text(p.x0-8-7*len(lbl), y+4, lbl, black)
	}
	tstep := niceStep(p.tmax, 10)
	for t := 0.0; t <= p.tmax+1e-9; t += tstep {
		x := p.px(t)
		p.c.line(x, p.y0, x, p.y0+p.h, grid, 1)
		lbl := fmt.Sprintf("%gs", t)
		p.c.text(x-7*len(lbl)/2, p.y0+p.h+16, lbl, black)
	}
	if p.loadEndSeconds > 0 {
		x := p.px(p.loadEndSeconds)
		for y := p.y0; y < p.y0+p.h; y += 6 {
			p.c.line(x, y, x, min(y+3, p.y0+p.h), color.RGBA{120, 120, 120, 255}, 1)
		}
		p.c.text(x+4, p.y0+12, "load ends", color.RGBA{90, 90, 90, 255})
	}
	p.c.line(p.x0, p.y0+p.h, p.x0+p.w, p.y0+p.h, black, 1)
	p.c.line(p.x0, p.y0, p.x0, p.y0+p.h, black, 1)
	p.c.text(p.x0, p.y0-8, p.title, black)
	p.c.text(p.x0-60, p.y0-8, p.ylabel, color.RGBA{80, 80, 80, 255})
}

func niceStep(span float64, ticks int) float64 {
	if span <= 0 {
		return 1
	}
	raw := span / float64(ticks)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*mag {
			return m * mag
		}
	}
	return 10 * mag
}

func writePlot(path string, fns []string, samples []sample, loadEnd float64, o options) error {
	const W, H = 1200, 760
	img := image.NewRGBA(image.Rect(0, 0, W, H))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	c := canvas{img}
	tmax, imax, lmax := 1.0, 1.0, 1.0
	for _, s := range samples {
		tmax = math.Max(tmax, s.t)
		lmax = math.Max(lmax, s.offered)
		for _, n := range s.instances {
			imax = math.Max(imax, float64(n))
		}
	}
	imax = math.Ceil(imax) + 1
	lmax *= 1.1
	c.text(70, 22, fmt.Sprintf("jobflow local engine: hey -c %d -z %s on the receiver, then idle until every function is at zero", o.conc, o.dur), color.Black)

	top := panel{c: c, x0: 80, y0: 60, w: 900, h: 380, tmax: tmax, vmax: imax, title: "ready instances per function", integerTicks: true, loadEndSeconds: loadEnd}
	top.axes()
	for i, f := range fns {
		col := palette[i%len(palette)]
		off := (i - len(fns)/2) // separate equal lines by a pixel or two
		var px, py int
		for j, s := range samples {
			x, y := top.px(s.t), top.py(float64(s.instances[f]))+off
			if j > 0 {
				c.line(px, py, x, py, col, 2) // step: hold, then jump
				c.line(x, py, x, y, col, 2)
			}
			px, py = x, y
		}
		ly := 80 + 20*i
		c.line(1000, ly-4, 1030, ly-4, col, 3)
		c.text(1038, ly, f, color.Black)
	}

	bot := panel{c: c, x0: 80, y0: 500, w: 900, h: 200, tmax: tmax, vmax: lmax, title: "offered load: requests/s reaching the receiver", loadEndSeconds: loadEnd}
	bot.axes()
	col := color.RGBA{20, 20, 20, 255}
	for j := 1; j < len(samples); j++ {
		a, b := samples[j-1], samples[j]
		c.line(bot.px(a.t), bot.py(a.offered), bot.px(b.t), bot.py(b.offered), col, 2)
	}
	c.text(W/2-40, H-14, "time since the load started", color.Black)

	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
