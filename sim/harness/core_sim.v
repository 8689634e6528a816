// Simulation top of the compiled Verilator backend (bioloop.sim.verilated_core); not for synthesis.
//
// The Vivado-named wrapper bioloop_core (hdl/bioloop_core.v around hdl/core.v) with every
// input registered once. The core sees at each edge exactly the values the C++ shim chose
// for that edge, but a top-level input now feeds only these registers: Verilator then has no
// combinational logic to re-evaluate when the shim changes an input, and evaluates the core's
// logic once per clock cycle instead of once per input change and again per edge. The shim
// writes the inputs of an edge before the edge preceding it (sim/harness/core_shim.cpp).
//
// Reset: rst_q starts high, so the core is in reset from the very first edge.
module bioloop_core_sim #(
  parameter AW = 15,   // AXI4-Lite address bits of the register map
  parameter K = 64     // LED lanes
) (
  input wire clk,
  input wire rst,
  input wire [AW-1:0] s_axi_awaddr,
  input wire [2:0] s_axi_awprot,
  input wire s_axi_awvalid,
  output wire s_axi_awready,
  input wire [31:0] s_axi_wdata,
  input wire [3:0] s_axi_wstrb,
  input wire s_axi_wvalid,
  output wire s_axi_wready,
  output wire [1:0] s_axi_bresp,
  output wire s_axi_bvalid,
  input wire s_axi_bready,
  input wire [AW-1:0] s_axi_araddr,
  input wire [2:0] s_axi_arprot,
  input wire s_axi_arvalid,
  output wire s_axi_arready,
  output wire [31:0] s_axi_rdata,
  output wire [1:0] s_axi_rresp,
  output wire s_axi_rvalid,
  input wire s_axi_rready,
  input wire [31:0] s_axis_samples_tdata,
  input wire s_axis_samples_tlast,
  input wire s_axis_samples_tvalid,
  output wire s_axis_samples_tready,
  output wire [63:0] m_axis_aer_tdata,
  output wire m_axis_aer_tlast,
  output wire m_axis_aer_tvalid,
  input wire m_axis_aer_tready,
  output wire [K-1:0] led
);
  reg rst_q = 1'b1;
  reg [AW-1:0] awaddr_q = 0;
  reg [2:0] awprot_q = 0;
  reg awvalid_q = 1'b0;
  reg [31:0] wdata_q = 0;
  reg [3:0] wstrb_q = 0;
  reg wvalid_q = 1'b0;
  reg bready_q = 1'b1;
  reg [AW-1:0] araddr_q = 0;
  reg [2:0] arprot_q = 0;
  reg arvalid_q = 1'b0;
  reg rready_q = 1'b1;
  reg [31:0] tdata_q = 0;
  reg tlast_q = 1'b0;
  reg tvalid_q = 1'b0;
  reg aer_tready_q = 1'b1;

  always @(posedge clk) begin
    rst_q <= rst;
    awaddr_q <= s_axi_awaddr;
    awprot_q <= s_axi_awprot;
    awvalid_q <= s_axi_awvalid;
    wdata_q <= s_axi_wdata;
    wstrb_q <= s_axi_wstrb;
    wvalid_q <= s_axi_wvalid;
    bready_q <= s_axi_bready;
    araddr_q <= s_axi_araddr;
    arprot_q <= s_axi_arprot;
    arvalid_q <= s_axi_arvalid;
    rready_q <= s_axi_rready;
    tdata_q <= s_axis_samples_tdata;
    tlast_q <= s_axis_samples_tlast;
    tvalid_q <= s_axis_samples_tvalid;
    aer_tready_q <= m_axis_aer_tready;
  end

  bioloop_core u_top (
    .clk(clk),
    .rst(rst_q),
    .s_axi_awaddr(awaddr_q),
    .s_axi_awprot(awprot_q),
    .s_axi_awvalid(awvalid_q),
    .s_axi_awready(s_axi_awready),
    .s_axi_wdata(wdata_q),
    .s_axi_wstrb(wstrb_q),
    .s_axi_wvalid(wvalid_q),
    .s_axi_wready(s_axi_wready),
    .s_axi_bresp(s_axi_bresp),
    .s_axi_bvalid(s_axi_bvalid),
    .s_axi_bready(bready_q),
    .s_axi_araddr(araddr_q),
    .s_axi_arprot(arprot_q),
    .s_axi_arvalid(arvalid_q),
    .s_axi_arready(s_axi_arready),
    .s_axi_rdata(s_axi_rdata),
    .s_axi_rresp(s_axi_rresp),
    .s_axi_rvalid(s_axi_rvalid),
    .s_axi_rready(rready_q),
    .s_axis_samples_tdata(tdata_q),
    .s_axis_samples_tlast(tlast_q),
    .s_axis_samples_tvalid(tvalid_q),
    .s_axis_samples_tready(s_axis_samples_tready),
    .m_axis_aer_tdata(m_axis_aer_tdata),
    .m_axis_aer_tlast(m_axis_aer_tlast),
    .m_axis_aer_tvalid(m_axis_aer_tvalid),
    .m_axis_aer_tready(aer_tready_q),
    .led(led)
  );
endmodule
